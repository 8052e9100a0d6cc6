"""THE mapping between LIBERO quantities and RDT's 128-d unified vector, both ways.

Training (``data/dataset.py``) and evaluation (``libero_eval/``) both import this module, so the
model sees identically built states, images and actions in both places. Nothing else in the repo
should know which slot holds what.

State (what the robot *is*), in the right-arm slots of ``configs/state_vec.py``:
    30-32  eef position (m, LIBERO world frame)          33-38  6D rotation of the eef (from axis-angle)
    10     gripper_open = finger width / 0.08 in [0, 1]  0-6    joint positions (only with use_joint_state)

Actions (what the robot is *told*), two encodings (``configs/base.yaml`` ``dataset.action_encoding``):
    abs_goal (default): the absolute OSC goal pose that a 7-d LIBERO action commands from the pose
        before it: goal_pos = p + s_pos * a[:3], goal_R = R(s_rot * a[3:6]) @ R_ee (robosuite
        OSC_POSE with control_delta), written into the same slots as the state (30-38) -- the kind of
        target RDT was pre-trained to predict (future absolute poses). Gripper target
        (1 - a[6]) / 2 in slot 10 (LIBERO: -1 = open, so open -> 1 like gripper_open).
    delta: the per-step physical delta, s_pos * a[:3] (m) in 30-32, 6D of R(s_rot * a[3:6]) in 33-38,
        gripper as above.
Both are exactly invertible given the pose before the action (``decode_actions``); evaluation
decodes each predicted step against the *current* simulator pose.

Scales s_pos = 0.05 m and s_rot = 0.5 rad are robosuite's OSC ``output_max``; ``OscScale.from_env_args``
reads them from a file's ``env_args`` so a dataset recorded with other limits still maps correctly.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping, NamedTuple

import numpy as np

from configs.schema import ENCODINGS, IMAGE_VIEWS  # noqa: F401 (re-exported)
from configs.state_vec import ARM_JOINT_POS, EEF_6D, EEF_POS, GRIPPER_OPEN, STATE_VEC_LEN
from policy.rotations import (
    axis_angle_to_matrix,
    matrix_to_axis_angle,
    matrix_to_rot6d,
    quat_to_axis_angle,
    rot6d_to_matrix,
)

# A live LIBERO observation's keys the policy reads: the two cameras in RDT slot order (cam_high,
# right_wrist) and the proprioception for the state vector and for decoding actions.
ENV_IMAGE_KEYS = ("agentview_image", "robot0_eye_in_hand_image")
ENV_STATE_KEYS = ("robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos", "robot0_joint_pos")
GRIPPER_MAX_WIDTH = 0.08  # m; Panda fingers fully open (each finger qpos ~ +/-0.04)
DEFAULT_POS_SCALE = 0.05  # m per unit action (robosuite osc_pose output_max[:3])
DEFAULT_ROT_SCALE = 0.5  # rad per unit action (output_max[3:6])
NOOP_EPS = 1e-4  # OpenVLA's no-op threshold on ||a[:6]||


class Pose(NamedTuple):
    """End-effector pose: ``pos`` (..., 3) metres, ``axis_angle`` (..., 3) as LIBERO's ``ee_ori``."""

    pos: np.ndarray
    axis_angle: np.ndarray


@dataclass(frozen=True)
class OscScale:
    """Per-axis scale from a unit LIBERO action to metres / radians (robosuite OSC ``output_max``)."""

    pos: tuple[float, float, float] = (DEFAULT_POS_SCALE,) * 3
    rot: tuple[float, float, float] = (DEFAULT_ROT_SCALE,) * 3

    @classmethod
    def from_env_args(cls, env_args: str | Mapping[str, Any] | None) -> "OscScale":
        """Read ``env_kwargs.controller_configs.output_max`` from a LIBERO ``data.attrs['env_args']``.

        Falls back to the defaults when the field is absent (e.g. hand-made files); raises
        ``ValueError`` when it is present but malformed (a wrong scale would silently corrupt every
        encoded action).
        """
        if env_args is None:
            return cls()
        if isinstance(env_args, (str, bytes)):
            env_args = json.loads(env_args)
        ctrl = (env_args.get("env_kwargs") or {}).get("controller_configs") or {}
        out_max = ctrl.get("output_max")
        if out_max is None:
            return cls()
        arr = np.asarray(out_max, dtype=np.float64).reshape(-1)
        if arr.size == 1:
            arr = np.repeat(arr, 6)
        if arr.size != 6 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
            raise ValueError(f"controller_configs.output_max must be 6 positive numbers, got {out_max!r}")
        return cls(pos=tuple(float(v) for v in arr[:3]), rot=tuple(float(v) for v in arr[3:]))


# --------------------------------------------------------------------------------------- images
def flip_to_camera_view(img: np.ndarray) -> np.ndarray:
    """Undo LIBERO's OpenGL vertical flip: (..., H, W, C) -> same shape, rows reversed.

    Works for HWC and NHWC. Only the vertical axis is flipped (the true camera view); OpenVLA's
    ``[::-1, ::-1]`` would also mirror left/right and contradict "left"/"right" in the language.
    Returns a contiguous copy (torch cannot wrap negative strides).
    """
    if img.ndim < 3:
        raise ValueError(f"flip_to_camera_view: expected (..., H, W, C), got shape {img.shape}")
    return np.ascontiguousarray(img[..., ::-1, :, :])


# The image orientation the model is trained and evaluated on (``dataset.image_view``):
#   camera       the true camera view (default): LIBERO frames rows-flipped, LeRobot frames un-mirrored;
#   rotated_180  OpenVLA / openpi / LeRobot's convention, LIBERO frames rotated 180° (upright but
#                mirrored left-right): LeRobot frames as they are, live and HDF5 frames rotated to match.


def _check_view(view: str, img: np.ndarray, name: str) -> None:
    if view not in IMAGE_VIEWS:
        raise ValueError(f"unknown image_view {view!r}; expected one of {IMAGE_VIEWS}")
    if img.ndim < 3:
        raise ValueError(f"{name}: expected (..., H, W, C), got shape {img.shape}")


def libero_image_to_view(img: np.ndarray, view: str = "camera") -> np.ndarray:
    """A frame as LIBERO renders and stores it (OpenGL: upside down; HDF5 files, live observations)
    -> ``view``. ``camera``: rows reversed (= ``flip_to_camera_view``); ``rotated_180``: rows and
    columns reversed. (..., H, W, C) in, contiguous copy out."""
    _check_view(view, img, "libero_image_to_view")
    if view == "camera":
        return flip_to_camera_view(img)
    return np.ascontiguousarray(img[..., ::-1, ::-1, :])


def lerobot_image_to_view(img: np.ndarray, view: str = "camera") -> np.ndarray:
    """A frame of a LeRobot LIBERO dataset (LIBERO's stored frame rotated 180°) -> ``view``.
    ``camera``: columns reversed (un-mirrored: equals ``libero_image_to_view(stored, "camera")``);
    ``rotated_180``: unchanged. (..., H, W, C) in, contiguous copy out."""
    _check_view(view, img, "lerobot_image_to_view")
    if view == "camera":
        return np.ascontiguousarray(img[..., :, ::-1, :])
    return np.ascontiguousarray(img)


# ---------------------------------------------------------------------------------------- masks
def state_mask(use_joint_state: bool = False) -> np.ndarray:
    """(128,) float32 0/1: slots filled by ``encode_state``."""
    m = np.zeros(STATE_VEC_LEN, np.float32)
    m[[GRIPPER_OPEN, *EEF_POS, *EEF_6D]] = 1.0
    if use_joint_state:
        m[ARM_JOINT_POS] = 1.0
    return m


def action_mask(encoding: str = "abs_goal") -> np.ndarray:
    """(128,) float32 0/1: slots filled by ``encode_actions`` (10, 30-38 for both encodings)."""
    _check_encoding(encoding)
    m = np.zeros(STATE_VEC_LEN, np.float32)
    m[[GRIPPER_OPEN, *EEF_POS, *EEF_6D]] = 1.0
    return m


# The action slots by quantity, for per-quantity error reports (train/sample.py): metres (absolute
# goal or per-step delta), the 6D rotation's unitless entries, the gripper target in [0, 1].
ACTION_SLOT_GROUPS: dict[str, list[int]] = {"eef_position": list(EEF_POS), "eef_rot6d": list(EEF_6D),
                                            "gripper": [GRIPPER_OPEN]}


def action_loss_weight(position_weight: float) -> np.ndarray | None:
    """(128,) float32 per-slot weight of the diffusion MSE: ``position_weight`` on the eef position
    slots (30-32, metres in both encodings), 1 elsewhere; None at 1 (the official plain MSE)."""
    if position_weight == 1.0:
        return None
    w = np.ones(STATE_VEC_LEN, np.float32)
    w[list(EEF_POS)] = float(position_weight)
    return w


def _check_encoding(encoding: str) -> None:
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown action encoding {encoding!r}; expected one of {ENCODINGS}")


def _last_dim(x: Any, n: int, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 1 or x.shape[-1] != n:
        raise ValueError(f"{name}: expected shape (..., {n}), got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name}: contains NaN or inf")
    return x


# ---------------------------------------------------------------------------------------- state
def gripper_open_from_qpos(gripper_qpos: np.ndarray) -> np.ndarray:
    """(..., 2) finger qpos (+q, -q) -> (...,) opening in [0, 1] = (q0 - q1) / 0.08, clipped."""
    q = _last_dim(gripper_qpos, 2, "gripper_qpos")
    return np.clip((q[..., 0] - q[..., 1]) / GRIPPER_MAX_WIDTH, 0.0, 1.0)


def encode_state(
    ee_pos: np.ndarray,
    ee_ori: np.ndarray,
    gripper_qpos: np.ndarray,
    joint_pos: np.ndarray | None = None,
    use_joint_state: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """LIBERO proprio -> 128-d state.

    Args:
        ee_pos: (..., 3) eef position (m). ee_ori: (..., 3) axis-angle (LIBERO ``obs/ee_ori``).
        gripper_qpos: (..., 2) finger joint positions. joint_pos: (..., 7), needed if use_joint_state.
    Returns:
        vec (..., 128) float64 (zeros outside the mask) and mask (128,) float32.
    """
    p = _last_dim(ee_pos, 3, "ee_pos")
    r6 = matrix_to_rot6d(axis_angle_to_matrix(_last_dim(ee_ori, 3, "ee_ori")))
    g = gripper_open_from_qpos(gripper_qpos)
    vec = np.zeros(p.shape[:-1] + (STATE_VEC_LEN,), np.float64)
    vec[..., EEF_POS] = p
    vec[..., EEF_6D] = r6
    vec[..., GRIPPER_OPEN] = g
    if use_joint_state:
        if joint_pos is None:
            raise ValueError("use_joint_state=True but no joint positions were given")
        vec[..., ARM_JOINT_POS] = _last_dim(joint_pos, 7, "joint_pos")
    return vec, state_mask(use_joint_state)


def pose_from_env_obs(obs: Mapping[str, np.ndarray]) -> Pose:
    """Live LIBERO/robosuite observation -> ``Pose`` (eef pos, axis-angle via robosuite's quat2axisangle)."""
    return Pose(np.asarray(obs["robot0_eef_pos"], np.float64), quat_to_axis_angle(obs["robot0_eef_quat"]))


def state_from_env_obs(obs: Mapping[str, np.ndarray], use_joint_state: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Live observation (``robot0_eef_pos``, ``robot0_eef_quat``, ``robot0_gripper_qpos``,
    ``robot0_joint_pos``) -> (vec (128,) float64, mask (128,) float32), identical to what the dataset
    builds from the recorded ``obs/ee_pos``, ``obs/ee_ori``, ``obs/gripper_states``, ``obs/joint_states``."""
    pose = pose_from_env_obs(obs)
    joints = obs.get("robot0_joint_pos") if use_joint_state else None
    return encode_state(pose.pos, pose.axis_angle, obs["robot0_gripper_qpos"], joints, use_joint_state)


# -------------------------------------------------------------------------------------- actions
def _as_pose(pose: Pose | tuple[np.ndarray, np.ndarray]) -> Pose:
    pos, aa = pose
    return Pose(_last_dim(pos, 3, "pose.pos"), _last_dim(aa, 3, "pose.axis_angle"))


def encode_actions(
    actions: np.ndarray,
    pose: Pose | tuple[np.ndarray, np.ndarray] | None,
    encoding: str = "abs_goal",
    scale: OscScale = OscScale(),
) -> np.ndarray:
    """7-d LIBERO actions -> 128-d action vectors.

    Args:
        actions: (..., 7) ``[dx, dy, dz, drx, dry, drz, gripper]``, first six in unit OSC scale.
        pose: the eef pose *before* each action, broadcastable to (..., 3); unused (may be None)
            for ``delta``.
        encoding: ``abs_goal`` or ``delta`` (module docstring).
    Returns:
        (..., 128) float64; slots outside ``action_mask(encoding)`` are zero.
    """
    _check_encoding(encoding)
    a = _last_dim(actions, 7, "actions")
    s_pos, s_rot = np.asarray(scale.pos), np.asarray(scale.rot)
    d_pos = s_pos * a[..., :3]
    d_rot = axis_angle_to_matrix(s_rot * a[..., 3:6])
    out = np.zeros(a.shape[:-1] + (STATE_VEC_LEN,), np.float64)
    if encoding == "abs_goal":
        if pose is None:
            raise ValueError("abs_goal encoding needs the pose before each action")
        p = _as_pose(pose)
        out[..., EEF_POS] = p.pos + d_pos
        out[..., EEF_6D] = matrix_to_rot6d(d_rot @ axis_angle_to_matrix(p.axis_angle))
    else:
        out[..., EEF_POS] = d_pos
        out[..., EEF_6D] = matrix_to_rot6d(d_rot)
    out[..., GRIPPER_OPEN] = (1.0 - a[..., 6]) / 2.0
    return out


def decode_actions(
    vec: np.ndarray,
    pose: Pose | tuple[np.ndarray, np.ndarray] | None,
    encoding: str = "abs_goal",
    scale: OscScale = OscScale(),
    binarize_gripper: bool = False,
    clip: bool = False,
) -> np.ndarray:
    """128-d action vectors -> 7-d LIBERO actions (inverse of ``encode_actions``).

    Args:
        vec: (..., 128) predicted/encoded actions. The 6D part is re-orthonormalised (Gram-Schmidt),
            so raw network outputs are fine.
        pose: the *current* eef pose, broadcastable to (..., 3) (``pose_from_env_obs`` in evaluation);
            unused for ``delta``.
        binarize_gripper: map slot 10 > 0.5 to -1 (open) and otherwise +1 (close), as the simulator
            gripper expects; else the exact inverse ``1 - 2 g``.
        clip: clip the first six entries to the controller's input range [-1, 1] (use in evaluation;
            off for exact round trips).
    Returns:
        (..., 7) float64.
    """
    _check_encoding(encoding)
    v = _last_dim(vec, STATE_VEC_LEN, "vec")
    s_pos, s_rot = np.asarray(scale.pos), np.asarray(scale.rot)
    r_target = rot6d_to_matrix(v[..., EEF_6D])
    if encoding == "abs_goal":
        if pose is None:
            raise ValueError("abs_goal decoding needs the current pose")
        p = _as_pose(pose)
        d_pos = v[..., EEF_POS] - p.pos
        r_now = axis_angle_to_matrix(p.axis_angle)
        d_rot = r_target @ np.swapaxes(r_now, -1, -2)
    else:
        d_pos = v[..., EEF_POS]
        d_rot = r_target
    out = np.empty(np.broadcast_shapes(v.shape[:-1], d_pos.shape[:-1]) + (7,), np.float64)
    out[..., :3] = d_pos / s_pos
    out[..., 3:6] = matrix_to_axis_angle(d_rot) / s_rot
    g = v[..., GRIPPER_OPEN]
    out[..., 6] = np.where(g > 0.5, -1.0, 1.0) if binarize_gripper else 1.0 - 2.0 * g
    if clip:
        out[..., :6] = np.clip(out[..., :6], -1.0, 1.0)
    return out


def hold_action(last: np.ndarray, encoding: str = "abs_goal") -> np.ndarray:
    """The encoded action that pads a chunk past the episode end: "stay where the last action left
    the robot". abs_goal: the last goal again (a goal already means "be there"); delta: zero motion
    (0 m, identity rotation) with the last gripper target -- repeating the last delta would mean
    "keep moving". ``last``: (128,) the episode's last encoded action."""
    _check_encoding(encoding)
    out = np.array(last, copy=True)
    if encoding == "delta":
        out[EEF_POS] = 0.0
        out[EEF_6D] = matrix_to_rot6d(np.eye(3))
    return out


# Short names used in the task description / evaluation code.
encode = encode_actions
decode = decode_actions


def noop_mask(actions: np.ndarray) -> np.ndarray:
    """(T, 7) -> (T,) bool, True where a step is a no-op by OpenVLA's criterion.

    A no-op moves nothing (``||a[:6]|| < 1e-4``) and keeps the previous gripper command; the first
    step is judged by the motion criterion only.
    """
    a = _last_dim(actions, 7, "actions")
    if a.ndim != 2:
        raise ValueError(f"noop_mask: expected (T, 7), got {a.shape}")
    still = np.linalg.norm(a[:, :6], axis=-1) < NOOP_EPS
    same_grip = np.ones(len(a), bool)
    same_grip[1:] = a[1:, 6] == a[:-1, 6]
    return still & same_grip
