"""The model's camera input, assembled one way for a dataset sample and for a live observation.

RDT takes ``img_history_size`` frames x ``CAMERA_SLOTS`` (cam_high, right_wrist, left_wrist) images,
history-major: ``[t-1: slots..., t: slots...]``. A slot without a camera (left_wrist on LIBERO) and a
history frame from before the episode start are masked out; before the start the first frame is
repeated, so the masked image is still a plausible one. ``data.dataset`` (frames read from a file)
and ``policy.rdt_policy`` (frames kept from the simulator) both call these two functions.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from configs.schema import CAMERA_SLOTS


def history_indices(last: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``last-size+1 .. last`` clamped at 0, and which of them are real frames (>= 0)."""
    idx = np.arange(last - size + 1, last + 1)
    return np.maximum(idx, 0), idx >= 0


def camera_slot_images(per_camera: Sequence[Optional[np.ndarray]], valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``per_camera[s]``: (history, H, W, 3) uint8 frames of slot ``s`` of ``CAMERA_SLOTS`` or None
    (no such camera); ``valid``: (history,) bool. -> images (history * slots, H, W, 3) uint8 and the
    mask (history * slots,) bool, history-major."""
    if len(per_camera) > len(CAMERA_SLOTS):
        raise ValueError(f"{len(per_camera)} cameras for {len(CAMERA_SLOTS)} slots {CAMERA_SLOTS}")
    shape = next(f.shape for f in per_camera if f is not None)
    history, h, w = len(valid), shape[1], shape[2]
    images = np.zeros((history, len(CAMERA_SLOTS), h, w, 3), np.uint8)
    mask = np.zeros((history, len(CAMERA_SLOTS)), bool)
    for slot, frames in enumerate(per_camera):
        if frames is not None:
            images[:, slot] = frames
            mask[:, slot] = valid
    return images.reshape(-1, h, w, 3), mask.reshape(-1)
