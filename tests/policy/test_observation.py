"""The one camera-slot + history assembly (policy/observation.py) that dataset samples and live
observations share."""
import numpy as np
import pytest

from policy.observation import camera_slot_images, history_indices


def test_history_before_the_episode_start_repeats_the_first_frame_masked():
    idx, valid = history_indices(0, 2)
    assert idx.tolist() == [0, 0] and valid.tolist() == [False, True]
    idx, valid = history_indices(5, 3)
    assert idx.tolist() == [3, 4, 5] and valid.all()


def test_slots_are_history_major_and_an_absent_camera_is_masked():
    frames = np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3)
    wrist = 255 - frames
    images, mask = camera_slot_images([frames, wrist, None], np.array([False, True]))
    assert images.shape == (6, 4, 4, 3) and mask.tolist() == [False, False, False, True, True, False]
    np.testing.assert_array_equal(images[0], frames[0])   # t-1: cam_high
    np.testing.assert_array_equal(images[1], wrist[0])    # t-1: right_wrist
    np.testing.assert_array_equal(images[4], wrist[1])    # t: right_wrist
    assert not images[2].any() and not images[5].any()    # left_wrist: no camera


def test_more_cameras_than_slots_is_an_error():
    f = np.zeros((1, 2, 2, 3), np.uint8)
    with pytest.raises(ValueError, match="4 cameras for 3 slots"):
        camera_slot_images([f, f, f, f], np.array([True]))
