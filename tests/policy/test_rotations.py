"""Rotation conversions: known rotations, edge angles (0, pi), batched round trips, bad inputs."""
import math

import numpy as np
import pytest
import torch

from policy.rotations import (
    axis_angle_to_matrix,
    axis_angle_to_rot6d,
    matrix_to_axis_angle,
    matrix_to_rot6d,
    quat_to_axis_angle,
    quat_to_matrix,
    rot6d_to_axis_angle,
    rot6d_to_matrix,
)

RX90 = np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]], float)
RY90 = np.array([[0, 0, 1], [0, 1, 0], [-1, 0, 0]], float)
RZ90 = np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1]], float)


def random_axis_angles(n, rng, max_angle=math.pi):
    axis = rng.normal(size=(n, 3))
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    return axis * rng.uniform(0, max_angle, size=(n, 1))


def test_identity():
    np.testing.assert_allclose(axis_angle_to_matrix(np.zeros(3)), np.eye(3), atol=0)
    np.testing.assert_allclose(matrix_to_axis_angle(np.eye(3)), np.zeros(3), atol=0)
    np.testing.assert_allclose(matrix_to_rot6d(np.eye(3)), [1, 0, 0, 0, 1, 0])
    np.testing.assert_allclose(rot6d_to_matrix(np.array([1.0, 0, 0, 0, 1, 0])), np.eye(3))
    np.testing.assert_allclose(quat_to_axis_angle(np.array([0, 0, 0, 1.0])), np.zeros(3))


@pytest.mark.parametrize("axis,expected", [(0, RX90), (1, RY90), (2, RZ90)])
def test_90_degrees_about_each_axis(axis, expected):
    aa = np.zeros(3)
    aa[axis] = math.pi / 2
    np.testing.assert_allclose(axis_angle_to_matrix(aa), expected, atol=1e-12)
    np.testing.assert_allclose(matrix_to_axis_angle(expected), aa, atol=1e-12)
    # 6D = first two columns, column-major
    np.testing.assert_allclose(matrix_to_rot6d(expected), np.concatenate([expected[:, 0], expected[:, 1]]))
    q = np.zeros(4)
    q[axis], q[3] = math.sin(math.pi / 4), math.cos(math.pi / 4)
    np.testing.assert_allclose(quat_to_axis_angle(q), aa, atol=1e-12)
    np.testing.assert_allclose(quat_to_matrix(q), expected, atol=1e-12)


@pytest.mark.parametrize("axis", [np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), np.array([0, 0, 1.0]),
                                  np.array([1.0, -2.0, 0.5]) / np.linalg.norm([1.0, -2.0, 0.5])])
def test_pi_rotations(axis):
    r = axis_angle_to_matrix(math.pi * axis)
    np.testing.assert_allclose(r, 2 * np.outer(axis, axis) - np.eye(3), atol=1e-12)
    back = matrix_to_axis_angle(r)
    assert abs(np.linalg.norm(back) - math.pi) < 1e-9
    # +axis and -axis are the same rotation at pi: compare matrices
    np.testing.assert_allclose(axis_angle_to_matrix(back), r, atol=1e-12)


def test_near_pi_and_near_zero_are_exact():
    rng = np.random.default_rng(0)
    axes = random_axis_angles(200, rng)
    axes /= np.linalg.norm(axes, axis=-1, keepdims=True)
    for angle in (1e-12, 1e-7, 1e-4 * 0.99, 1e-4 * 1.01, math.pi - 1e-3, math.pi - 1e-6, math.pi - 1e-9):
        aa = axes * angle
        back = matrix_to_axis_angle(axis_angle_to_matrix(aa))
        np.testing.assert_allclose(back, aa, atol=1e-9, rtol=0)


def test_angle_above_pi_like_libero_ee_ori():
    # LIBERO stores ee_ori with angles slightly above pi; the matrix must be right and the
    # recovered axis-angle is the equivalent one with angle in [0, pi].
    axis = np.array([1.0, 0.01, 0.02])
    axis /= np.linalg.norm(axis)
    aa = axis * 3.17
    r = axis_angle_to_matrix(aa)
    back = matrix_to_axis_angle(r)
    np.testing.assert_allclose(back, -axis * (2 * math.pi - 3.17), atol=1e-12)
    np.testing.assert_allclose(axis_angle_to_matrix(back), r, atol=1e-12)


def test_random_round_trips_batched():
    rng = np.random.default_rng(1)
    aa = random_axis_angles(1000, rng).reshape(10, 100, 3)
    r = axis_angle_to_matrix(aa)
    assert r.shape == (10, 100, 3, 3)
    np.testing.assert_allclose(r @ np.swapaxes(r, -1, -2), np.broadcast_to(np.eye(3), r.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-12)
    np.testing.assert_allclose(matrix_to_axis_angle(r), aa, atol=1e-9)
    d6 = matrix_to_rot6d(r)
    assert d6.shape == (10, 100, 6)
    np.testing.assert_allclose(rot6d_to_matrix(d6), r, atol=1e-12)
    np.testing.assert_allclose(rot6d_to_axis_angle(axis_angle_to_rot6d(aa)), aa, atol=1e-9)


def test_rot6d_gram_schmidt_reorthonormalises():
    rng = np.random.default_rng(2)
    r = axis_angle_to_matrix(random_axis_angles(50, rng))
    noisy = matrix_to_rot6d(r) * 3.0 + rng.normal(scale=1e-3, size=(50, 6))
    out = rot6d_to_matrix(noisy)
    np.testing.assert_allclose(out @ np.swapaxes(out, -1, -2), np.broadcast_to(np.eye(3), out.shape), atol=1e-12)
    np.testing.assert_allclose(out, r, atol=5e-3)
    # first column direction is kept exactly
    a1 = noisy[:, :3] / np.linalg.norm(noisy[:, :3], axis=-1, keepdims=True)
    np.testing.assert_allclose(out[:, :, 0], a1, atol=1e-12)


def test_quat_to_axis_angle_matches_robosuite_rule():
    rng = np.random.default_rng(3)
    q = rng.normal(size=(100, 4))
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    aa = quat_to_axis_angle(q)
    for qi, ai in zip(q, aa):  # scalar re-statement of robosuite's formula
        w = min(max(qi[3], -1.0), 1.0)
        den = math.sqrt(1 - w * w)
        np.testing.assert_allclose(ai, qi[:3] * 2 * math.acos(w) / den, rtol=1e-12)
    # same rotation as the matrix from the quaternion (angles may exceed pi when w < 0)
    np.testing.assert_allclose(axis_angle_to_matrix(aa), quat_to_matrix(q), atol=1e-10)


def test_torch_paths_match_numpy():
    rng = np.random.default_rng(4)
    aa = random_axis_angles(20, rng)
    r_np = axis_angle_to_matrix(aa)
    r_t = axis_angle_to_matrix(torch.from_numpy(aa))
    assert isinstance(r_t, torch.Tensor)
    np.testing.assert_allclose(r_t.numpy(), r_np, atol=1e-12)
    d6 = matrix_to_rot6d(r_t)
    np.testing.assert_allclose(d6.numpy(), matrix_to_rot6d(r_np), atol=0)
    np.testing.assert_allclose(rot6d_to_matrix(d6.float()).numpy(), r_np, atol=1e-5)
    np.testing.assert_allclose(axis_angle_to_matrix(torch.zeros(3)).numpy(), np.eye(3))


@pytest.mark.parametrize("fn,bad", [
    (axis_angle_to_matrix, np.zeros(4)),
    (axis_angle_to_matrix, np.zeros((2, 2))),
    (matrix_to_axis_angle, np.zeros((3, 4))),
    (matrix_to_rot6d, np.zeros((3,))),
    (rot6d_to_matrix, np.zeros(5)),
    (quat_to_axis_angle, np.zeros(3)),
    (quat_to_matrix, np.zeros((2, 3))),
])
def test_bad_shapes_raise(fn, bad):
    with pytest.raises(ValueError, match="expected shape"):
        fn(bad)


@pytest.mark.parametrize("fn,n", [(axis_angle_to_matrix, 3), (quat_to_axis_angle, 4), (rot6d_to_matrix, 6)])
def test_non_finite_raises(fn, n):
    x = np.ones(n)
    x[0] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        fn(x)


def test_degenerate_6d_and_zero_quaternion_raise():
    with pytest.raises(ValueError, match="degenerate"):
        rot6d_to_matrix(np.array([1.0, 0, 0, 2.0, 0, 0]))
    with pytest.raises(ValueError, match="degenerate"):
        rot6d_to_matrix(np.zeros(6))
    with pytest.raises(ValueError, match="zero-length"):
        quat_to_matrix(np.zeros(4))
