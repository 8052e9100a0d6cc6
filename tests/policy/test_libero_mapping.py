"""LIBERO <-> 128-d mapping, checked on the real LIBERO-format fixture file."""
import json

import h5py
import numpy as np
import pytest

from configs.state_vec import STATE_VEC_IDX_MAPPING, STATE_VEC_LEN
from policy.libero_mapping import (
    OscScale,
    Pose,
    action_mask,
    decode_actions,
    encode_actions,
    encode_state,
    flip_to_camera_view,
    gripper_open_from_qpos,
    noop_mask,
    pose_from_env_obs,
    state_from_env_obs,
    state_mask,
)
from policy.rotations import matrix_to_rot6d, quat_to_matrix

POS = [30, 31, 32]
ROT = [33, 34, 35, 36, 37, 38]


@pytest.fixture(scope="module")
def demos(libero_fixture_file):
    out = []
    with h5py.File(libero_fixture_file, "r") as f:
        scale = OscScale.from_env_args(f["data"].attrs["env_args"])
        for key in sorted(f["data"].keys()):
            g = f["data"][key]
            out.append({k: g[k][()] for k in ("actions", "robot_states", "obs/ee_pos", "obs/ee_ori",
                                               "obs/gripper_states", "obs/joint_states")})
    assert len(out) == 3
    return out, scale


def test_state_vec_table():
    m = STATE_VEC_IDX_MAPPING
    assert STATE_VEC_LEN == 128
    assert m["gripper_open"] == m["right_gripper_open"] == 10
    assert [m[f"eef_pos_{a}"] for a in "xyz"] == POS
    assert [m[f"eef_angle_{i}"] for i in range(6)] == ROT
    assert m["arm_joint_0_pos"] == 0 and m["right_arm_joint_9_pos"] == 9
    assert m["gripper_open_vel"] == 25 and m["eef_vel_x"] == 39 and m["eef_angular_vel_yaw"] == 44
    assert m["left_arm_joint_0_pos"] == 50 and m["left_gripper_open"] == 60
    assert m["left_eef_pos_x"] == 80 and m["left_eef_angle_5"] == 88 and m["left_eef_angular_vel_yaw"] == 94
    assert m["base_vel_x"] == 100 and m["base_vel_y"] == 101 and m["base_angular_vel"] == 102


def test_osc_scale_read_from_env_args(demos):
    _, scale = demos
    assert scale == OscScale((0.05,) * 3, (0.5,) * 3)
    custom = {"env_kwargs": {"controller_configs": {"output_max": [0.1, 0.1, 0.1, 1.0, 1.0, 1.0]}}}
    assert OscScale.from_env_args(json.dumps(custom)) == OscScale((0.1,) * 3, (1.0,) * 3)
    assert OscScale.from_env_args({"env_kwargs": {}}) == OscScale()
    with pytest.raises(ValueError, match="output_max"):
        OscScale.from_env_args({"env_kwargs": {"controller_configs": {"output_max": [0.1, 0.2]}}})


@pytest.mark.parametrize("encoding", ["abs_goal", "delta"])
def test_round_trip_every_step_of_fixture(demos, encoding):
    data, scale = demos
    n_checked = 0
    for d in data:
        a = d["actions"]
        # (1) the real pairing of raw files: pose before actions[t] is obs[t-1] (t >= 1)
        pose = Pose(d["obs/ee_pos"][:-1], d["obs/ee_ori"][:-1])
        enc = encode_actions(a[1:], pose, encoding, scale)
        assert enc.shape == (len(a) - 1, 128)
        np.testing.assert_allclose(decode_actions(enc, pose, encoding, scale), a[1:], atol=1e-5, rtol=0)
        # (2) every step including t = 0, against the pose recorded at the same index
        pose_all = Pose(d["obs/ee_pos"], d["obs/ee_ori"])
        enc_all = encode_actions(a, pose_all, encoding, scale)
        back = decode_actions(enc_all, pose_all, encoding, scale)
        np.testing.assert_allclose(back, a, atol=1e-5, rtol=0)
        # also survives the float32 storage of the dataset
        np.testing.assert_allclose(decode_actions(enc_all.astype(np.float32), pose_all, encoding, scale), a,
                                   atol=1e-5, rtol=0)
        # only the masked slots are written
        assert np.all(enc_all[:, action_mask(encoding) == 0] == 0)
        n_checked += len(a)
    assert n_checked == 70 + 72 + 71


def test_abs_goal_values(demos):
    data, scale = demos
    d = data[0]
    a, p, o = d["actions"][5], d["obs/ee_pos"][4], d["obs/ee_ori"][4]
    enc = encode_actions(a, Pose(p, o), "abs_goal", scale)
    np.testing.assert_allclose(enc[POS], p + 0.05 * a[:3], atol=1e-15)
    # goal rotation is a small rotation away from the current one
    r_now = quat_to_matrix(d["robot_states"][4, 5:9])
    assert np.abs(enc[ROT] - matrix_to_rot6d(r_now)).max() < 0.5 * np.abs(a[3:6]).sum() + 1e-9
    assert enc[10] == (1 - a[6]) / 2
    delta = encode_actions(a, None, "delta", scale)
    np.testing.assert_allclose(delta[POS], 0.05 * a[:3], atol=1e-15)


def test_gripper_convention_and_binarize():
    vec = np.zeros((3, 128))
    vec[:, ROT] = [1, 0, 0, 0, 1, 0]
    vec[:, 10] = [1.0, 0.0, 0.7]
    pose = Pose(np.zeros(3), np.zeros(3))
    a = decode_actions(vec, pose, "abs_goal")
    np.testing.assert_allclose(a[:, 6], [-1.0, 1.0, -0.4])  # LIBERO: -1 = open
    a_bin = decode_actions(vec, pose, "abs_goal", binarize_gripper=True)
    np.testing.assert_array_equal(a_bin[:, 6], [-1.0, 1.0, -1.0])
    open_cmd = encode_actions(np.array([0, 0, 0, 0, 0, 0, -1.0]), pose)
    assert open_cmd[10] == 1.0


def test_decode_clip_flag():
    vec = np.zeros(128)
    vec[ROT] = [1, 0, 0, 0, 1, 0]
    vec[POS] = [0.2, -0.2, 0.01]  # 20 cm away: 4x the per-step limit
    pose = Pose(np.zeros(3), np.zeros(3))
    np.testing.assert_allclose(decode_actions(vec, pose)[:3], [4.0, -4.0, 0.2])
    np.testing.assert_allclose(decode_actions(vec, pose, clip=True)[:3], [1.0, -1.0, 0.2])


def test_decode_reorthonormalises_noisy_prediction(demos):
    data, scale = demos
    d = data[1]
    pose = Pose(d["obs/ee_pos"][10], d["obs/ee_ori"][10])
    enc = encode_actions(d["actions"][11], pose, "abs_goal", scale)
    noisy = enc.copy()
    noisy[ROT] *= 1.01  # network outputs are not exactly orthonormal
    np.testing.assert_allclose(decode_actions(noisy, pose, "abs_goal", scale), d["actions"][11], atol=1e-6)


def test_state_values_from_file(demos):
    data, _ = demos
    d = data[0]
    vec, mask = encode_state(d["obs/ee_pos"], d["obs/ee_ori"], d["obs/gripper_states"])
    assert vec.shape == (70, 128) and mask.shape == (128,)
    np.testing.assert_array_equal(vec[:, POS], d["obs/ee_pos"])
    # 6D from the stored axis-angle == 6D from the independent quaternion in robot_states
    np.testing.assert_allclose(vec[:, ROT], matrix_to_rot6d(quat_to_matrix(d["robot_states"][:, 5:9])), atol=1e-9)
    q = d["obs/gripper_states"]
    np.testing.assert_allclose(vec[:, 10], np.clip((q[:, 0] - q[:, 1]) / 0.08, 0, 1))
    assert 0.85 < vec[0, 10] <= 1.0  # fingers ~0.036 each: nearly open at the start
    assert set(np.flatnonzero(mask)) == {10, *POS, *ROT}
    assert np.all(vec[:, mask == 0] == 0)
    vj, mj = encode_state(d["obs/ee_pos"], d["obs/ee_ori"], q, d["obs/joint_states"], use_joint_state=True)
    np.testing.assert_array_equal(vj[:, :7], d["obs/joint_states"])
    assert set(np.flatnonzero(mj)) == {0, 1, 2, 3, 4, 5, 6, 10, *POS, *ROT}
    np.testing.assert_array_equal(state_mask(True), mj)
    with pytest.raises(ValueError, match="joint"):
        encode_state(d["obs/ee_pos"], d["obs/ee_ori"], q, None, use_joint_state=True)


def test_live_env_obs_gives_identical_state(demos):
    """Evaluation builds states from robot0_* observations; they must equal the training states."""
    data, _ = demos
    d = data[2]
    for t in (0, 17, 70):
        rs = d["robot_states"][t]  # [gripper qpos (2), eef pos (3), eef quat xyzw (4)], same time as obs[t]
        obs = {"robot0_eef_pos": rs[2:5], "robot0_eef_quat": rs[5:9], "robot0_gripper_qpos": rs[0:2],
               "robot0_joint_pos": d["obs/joint_states"][t]}
        live, live_mask = state_from_env_obs(obs, use_joint_state=True)
        rec, rec_mask = encode_state(d["obs/ee_pos"][t], d["obs/ee_ori"][t], d["obs/gripper_states"][t],
                                     d["obs/joint_states"][t], use_joint_state=True)
        np.testing.assert_allclose(live, rec, rtol=0, atol=1e-12)  # float rounding only
        np.testing.assert_array_equal(live_mask, rec_mask)
        pose = pose_from_env_obs(obs)
        np.testing.assert_allclose(pose.axis_angle, d["obs/ee_ori"][t], rtol=0, atol=1e-14)


def test_quat_to_axis_angle_reproduces_recorded_ee_ori(demos):
    from policy.rotations import quat_to_axis_angle

    data, _ = demos
    for d in data:  # robot_states[:, 5:9] is the eef quaternion at the same time as obs[t]
        # equal up to float rounding (numpy's vectorised arccos may differ from math.acos by 1 ulp)
        np.testing.assert_allclose(quat_to_axis_angle(d["robot_states"][:, 5:9]), d["obs/ee_ori"], rtol=0, atol=1e-14)


def test_gripper_open_clipped():
    np.testing.assert_allclose(gripper_open_from_qpos(np.array([[0.05, -0.05], [0.0, 0.0], [-0.001, 0.001]])),
                               [1.0, 0.0, 0.0])


def test_flip_to_camera_view_is_vertical_only():
    img = np.arange(2 * 4 * 5 * 3, dtype=np.uint8).reshape(2, 4, 5, 3)
    out = flip_to_camera_view(img)
    np.testing.assert_array_equal(out, img[:, ::-1])
    np.testing.assert_array_equal(flip_to_camera_view(img[0]), img[0][::-1])
    assert out.flags["C_CONTIGUOUS"]
    with pytest.raises(ValueError):
        flip_to_camera_view(np.zeros((4, 5)))


def test_noop_mask():
    a = np.zeros((4, 7))
    a[:, 6] = [-1, -1, 1, 1]
    a[3, 0] = 0.5
    np.testing.assert_array_equal(noop_mask(a), [True, True, False, False])


def test_bad_inputs():
    with pytest.raises(ValueError, match="unknown action encoding"):
        encode_actions(np.zeros(7), None, "velocity")
    with pytest.raises(ValueError, match="needs the pose"):
        encode_actions(np.zeros(7), None, "abs_goal")
    with pytest.raises(ValueError, match=r"\(\.\.\., 7\)"):
        encode_actions(np.zeros(6), None, "delta")
    with pytest.raises(ValueError, match="NaN"):
        encode_actions(np.full(7, np.nan), None, "delta")
    with pytest.raises(ValueError, match=r"\(\.\.\., 128\)"):
        decode_actions(np.zeros(64), None, "delta")
