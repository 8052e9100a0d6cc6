"""Rotation conversions used by the LIBERO <-> 128-d mapping (pure functions, batched).

Conventions (these are what LIBERO/robosuite and RDT use, so they are fixed, not options):
- axis-angle: a 3-vector ``theta * axis`` (robosuite's ``quat2axisangle``; LIBERO's ``obs/ee_ori``).
  Any angle is accepted as input (LIBERO stores angles slightly above pi); outputs have angle in [0, pi].
- quaternion: ``(x, y, z, w)`` (robosuite order).
- 6D rotation (RDT's ``eef_angle_0..5``): the first two *columns* of the rotation matrix, flattened
  column-wise ``[R00, R10, R20, R01, R11, R21]``; back to a matrix by Gram-Schmidt, so any 6-vector
  whose two halves are not parallel maps to a proper rotation (useful for network outputs).

All functions take arrays with arbitrary leading batch dims: axis-angle ``(..., 3)``, quaternion
``(..., 4)``, matrix ``(..., 3, 3)``, 6D ``(..., 6)``. ``axis_angle_to_matrix``, ``matrix_to_rot6d``
and ``rot6d_to_matrix`` also accept ``torch.Tensor`` (same dtype/device out); the others are numpy
only. Wrong trailing shapes and non-finite values raise ``ValueError``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

try:  # torch is optional for this module; the numpy path never needs it
    import torch
except ImportError:  # pragma: no cover - torch is a hard dependency of the repo
    torch = None  # type: ignore[assignment]

# Below this angle (rad) the Taylor series replace sin(t)/t and (1-cos t)/t^2: at 1e-4 the series
# truncation error is ~1e-17, far below float64 rounding of the closed forms.
_SMALL_ANGLE = 1e-4


def _is_torch(x: Any) -> bool:
    return torch is not None and isinstance(x, torch.Tensor)


def _check(x: Any, trailing: tuple[int, ...], name: str, allow_torch: bool = False):
    """Validate shape/finiteness; return x as a float array (numpy float64 unless float32/torch given)."""
    if _is_torch(x):
        if not allow_torch:
            raise TypeError(f"{name}: torch tensors are not supported here, pass a numpy array")
        if not x.is_floating_point():
            x = x.double()
        finite = bool(torch.isfinite(x).all())
    else:
        x = np.asarray(x)
        if x.dtype not in (np.float32, np.float64):
            x = x.astype(np.float64)
        finite = bool(np.isfinite(x).all())
    k = len(trailing)
    if x.ndim < k or tuple(x.shape[x.ndim - k:]) != trailing:
        raise ValueError(f"{name}: expected shape (..., {', '.join(map(str, trailing))}), got {tuple(x.shape)}")
    if not finite:
        raise ValueError(f"{name}: input contains NaN or inf")
    return x


def _cross(a, b):
    if _is_torch(a):
        return torch.linalg.cross(a, b, dim=-1)
    return np.cross(a, b)


def _stack(xs, axis: int):
    if _is_torch(xs[0]):
        return torch.stack(xs, dim=axis)
    return np.stack(xs, axis=axis)


def _norm(v):
    if _is_torch(v):
        return torch.linalg.norm(v, dim=-1, keepdim=True)
    return np.linalg.norm(v, axis=-1, keepdims=True)


def axis_angle_to_matrix(aa):
    """Rodrigues' formula: (..., 3) axis-angle -> (..., 3, 3) rotation matrix.

    Exact at zero (series expansion for tiny angles) and valid for any angle, including >= pi.
    """
    aa = _check(aa, (3,), "axis_angle_to_matrix", allow_torch=True)
    t = aa
    if _is_torch(t):
        theta2 = (t * t).sum(-1)
        theta = torch.sqrt(theta2)
        small = theta < _SMALL_ANGLE
        safe = torch.where(small, torch.ones_like(theta), theta)
        a = torch.where(small, 1 - theta2 / 6, torch.sin(safe) / safe)
        b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(safe)) / (safe * safe))
        eye = torch.eye(3, dtype=t.dtype, device=t.device)
    else:
        theta2 = (t * t).sum(-1)
        theta = np.sqrt(theta2)
        small = theta < _SMALL_ANGLE
        safe = np.where(small, 1.0, theta)
        a = np.where(small, 1 - theta2 / 6, np.sin(safe) / safe)
        b = np.where(small, 0.5 - theta2 / 24, (1 - np.cos(safe)) / (safe * safe))
        eye = np.eye(3, dtype=t.dtype)
    x, y, z = t[..., 0], t[..., 1], t[..., 2]
    zero = x * 0
    k = _stack([_stack([zero, -z, y], -1), _stack([z, zero, -x], -1), _stack([-y, x, zero], -1)], -2)
    kk = k @ k
    return eye + a[..., None, None] * k + b[..., None, None] * kk


def matrix_to_axis_angle(mat: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrix -> (..., 3) axis-angle with angle in [0, pi] (numpy).

    The angle comes from atan2(|sin|, cos), accurate everywhere. Below pi/2 the axis comes from the
    antisymmetric part (well conditioned there); above, from the symmetric part
    ``(R + R^T)/2 = cos(t) I + (1 - cos(t)) n n^T`` with the sign fixed by the antisymmetric part,
    which stays exact at and near pi where the antisymmetric part vanishes.
    """
    r = _check(mat, (3, 3), "matrix_to_axis_angle")
    v = 0.5 * np.stack([r[..., 2, 1] - r[..., 1, 2], r[..., 0, 2] - r[..., 2, 0], r[..., 1, 0] - r[..., 0, 1]], -1)
    sin_t = np.linalg.norm(v, axis=-1)
    cos_t = 0.5 * (np.trace(r, axis1=-2, axis2=-1) - 1.0)
    theta = np.arctan2(sin_t, cos_t)

    # Branch 1 (theta <= pi/2): aa = v * theta / sin(theta).
    small = theta < _SMALL_ANGLE
    safe_sin = np.where(small, 1.0, sin_t)
    ratio = np.where(small, 1.0 + theta * theta / 6.0, theta / safe_sin)
    out = v * ratio[..., None]

    # Branch 2 (theta > pi/2): axis from the symmetric part.
    big = theta > np.pi / 2
    if np.any(big):
        rb, vb, tb, cb = r[big], v[big], theta[big], cos_t[big]
        sym = 0.5 * (rb + np.swapaxes(rb, -1, -2)) - cb[:, None, None] * np.eye(3)
        nnt = sym / (1.0 - cb)[:, None, None]  # = n n^T
        col = np.argmax(np.diagonal(nnt, axis1=-2, axis2=-1), axis=-1)
        n = nnt[np.arange(len(col)), :, col]
        n = n / np.linalg.norm(n, axis=-1, keepdims=True)
        sign = np.where((n * vb).sum(-1) < 0, -1.0, 1.0)
        out[big] = n * (sign * tb)[:, None]
    return out


def quat_to_axis_angle(quat: np.ndarray) -> np.ndarray:
    """(..., 4) quaternion (x, y, z, w) -> (..., 3) axis-angle, exactly as robosuite's quat2axisangle.

    Matches what LIBERO stored in ``obs/ee_ori`` (to ~1 ulp on the fixture): w is clipped to
    [-1, 1], the quaternion is NOT re-normalised, the angle is ``2 acos(w)`` (so it can exceed pi
    when w < 0), and the result is zero only when ``sqrt(1 - w^2)`` is exactly zero. Evaluation must
    use this same function on live ``robot0_eef_quat`` so states match the training data.
    """
    q = _check(quat, (4,), "quat_to_axis_angle")
    w = np.clip(q[..., 3], -1.0, 1.0)
    den = np.sqrt(1.0 - w * w)
    zero = den == 0.0
    # Same operation order as robosuite ((q * 2 * acos(w)) / den) so results match to float rounding.
    num = q[..., :3] * 2.0 * np.arccos(w)[..., None]
    return np.where(zero[..., None], 0.0, num / np.where(zero, 1.0, den)[..., None])


def quat_to_matrix(quat: np.ndarray) -> np.ndarray:
    """(..., 4) quaternion (x, y, z, w), normalised first -> (..., 3, 3) rotation matrix."""
    q = _check(quat, (4,), "quat_to_matrix")
    n = np.linalg.norm(q, axis=-1, keepdims=True)
    if np.any(n < 1e-12):
        raise ValueError("quat_to_matrix: zero-length quaternion")
    x, y, z, w = np.moveaxis(q / n, -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def matrix_to_rot6d(mat):
    """(..., 3, 3) -> (..., 6): first two columns, column-wise ``[R00, R10, R20, R01, R11, R21]``."""
    r = _check(mat, (3, 3), "matrix_to_rot6d", allow_torch=True)
    cols = r[..., :, :2]  # (..., 3, 2)
    if _is_torch(cols):
        return cols.transpose(-1, -2).reshape(*cols.shape[:-2], 6)
    return np.swapaxes(cols, -1, -2).reshape(*cols.shape[:-2], 6)


def rot6d_to_matrix(d6, eps: float = 1e-8):
    """(..., 6) -> (..., 3, 3) by Gram-Schmidt: x = a1/|a1|, z = (x cross a2)/|.|, y = z cross x.

    Exact inverse of ``matrix_to_rot6d`` on rotation matrices; re-orthonormalises anything else.
    Raises ``ValueError`` when a column is (near) zero or the two columns are (near) parallel.
    """
    d = _check(d6, (6,), "rot6d_to_matrix", allow_torch=True)
    a1, a2 = d[..., 0:3], d[..., 3:6]
    n1 = _norm(a1)
    if bool((n1 < eps).any()):
        raise ValueError("rot6d_to_matrix: degenerate 6D rotation (first column is zero)")
    x = a1 / n1
    zc = _cross(x, a2)
    nz = _norm(zc)
    if bool((nz < eps).any()):
        raise ValueError("rot6d_to_matrix: degenerate 6D rotation (zero or parallel columns)")
    z = zc / nz
    y = _cross(z, x)
    return _stack([x, y, z], -1)


def axis_angle_to_rot6d(aa):
    """(..., 3) axis-angle -> (..., 6) RDT 6D rotation."""
    return matrix_to_rot6d(axis_angle_to_matrix(aa))


def rot6d_to_axis_angle(d6: np.ndarray) -> np.ndarray:
    """(..., 6) RDT 6D rotation -> (..., 3) axis-angle (angle in [0, pi]); numpy."""
    return matrix_to_axis_angle(rot6d_to_matrix(d6))
