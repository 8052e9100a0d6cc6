"""The scripted expert's machinery: privileged scene access, a waypoint state machine and the
pick-and-place primitive that the per-suite plans (`goal_plans`, `object_plans`) are made of.

The expert reads object / fixture poses and joint positions from the simulator (``env.env.sim``
and the observation's ``<obj>_pos`` / ``<obj>_quat``) and follows a plan of waypoints (pre-grasp
above the object, descend, close, lift, carry, lower, release, retreat) with a proportional
controller. It emits ordinary 7-d OSC_POSE delta actions: ``a[:3]`` in units of 0.05 m, ``a[3:6]``
an axis-angle rotation in units of 0.5 rad (world frame), ``a[6]`` the gripper (-1 open, +1
close), all clipped to [-1, 1]. Each episode draws small variations from its own rng (grasp
offsets, heights, gains, speed limit, action noise, hold lengths), so demos are not identical.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from libero_eval import env as lenv

POS_SCALE = 0.05  # m per unit of a[:3] (robosuite osc_pose output_max)
ROT_SCALE = 0.5  # rad per unit of a[3:6]
# Gripper pointing straight down, fingers opening along world y (the Panda's home orientation).
R_DOWN = np.diag([1.0, -1.0, -1.0])


# ------------------------------------------------------------------------------------------------
# Small geometry helpers
# ------------------------------------------------------------------------------------------------
def quat_xyzw_to_mat(q: np.ndarray) -> np.ndarray:
    x, y, z, w = np.asarray(q, np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def rot_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def mat_to_axisangle(R: np.ndarray) -> np.ndarray:
    """Rotation vector (axis * angle) of a rotation matrix."""
    cos = np.clip((np.trace(R) - 1.0) / 2.0, -1.0, 1.0)
    angle = np.arccos(cos)
    if angle < 1e-8:
        return np.zeros(3)
    if np.pi - angle < 1e-4:  # 180 deg: axis from the diagonal
        axis = np.sqrt(np.maximum((np.diag(R) + 1.0) / 2.0, 0.0))
        k = int(np.argmax(axis))
        for j in range(3):
            if j != k:
                axis[j] = np.copysign(axis[j], R[k, j] + R[j, k])
        return axis / np.linalg.norm(axis) * angle
    axis = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]]) / (2.0 * np.sin(angle))
    return axis * angle


def wrap_half_pi(angle: float) -> float:
    """Angle modulo pi, in [-pi/2, pi/2) (a parallel gripper is symmetric under a half turn)."""
    return float((angle + np.pi / 2) % np.pi - np.pi / 2)


def yaw_of(quat_xyzw: np.ndarray) -> float:
    R = quat_xyzw_to_mat(quat_xyzw)
    return float(np.arctan2(R[1, 0], R[0, 0]))


# ------------------------------------------------------------------------------------------------
# Privileged state access
# ------------------------------------------------------------------------------------------------
class Scene:
    """Reads poses from the simulator: objects (obs / bodies), sites, joints."""

    def __init__(self, env):
        self.env = env
        self.inner = lenv.inner_env(env)
        self.sim = self.inner.sim
        self.model = self.sim.model

    def body_pos(self, name: str) -> np.ndarray:
        for cand in (f"{name}_main", name):
            try:
                return np.array(self.sim.data.body_xpos[self.model.body_name2id(cand)], np.float64)
            except (ValueError, KeyError):
                continue
        raise KeyError(f"no body {name!r}")

    def body_quat_xyzw(self, name: str) -> np.ndarray:
        for cand in (f"{name}_main", name):
            try:
                w, x, y, z = self.sim.data.body_xquat[self.model.body_name2id(cand)]
                return np.array([x, y, z, w], np.float64)
            except (ValueError, KeyError):
                continue
        raise KeyError(f"no body {name!r}")

    def site_pos(self, name: str) -> np.ndarray:
        return np.array(self.sim.data.site_xpos[self.model.site_name2id(name)], np.float64)

    def geom_pos(self, name: str) -> np.ndarray:
        return np.array(self.sim.data.geom_xpos[self.model.geom_name2id(name)], np.float64)

    def joint_qpos(self, name: str) -> float:
        return float(self.sim.data.qpos[self.model.jnt_qposadr[self.model.joint_name2id(name)]])

    @staticmethod
    def eef(obs: dict) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(obs["robot0_eef_pos"], np.float64), quat_xyzw_to_mat(obs["robot0_eef_quat"])


# ------------------------------------------------------------------------------------------------
# Waypoint state machine
# ------------------------------------------------------------------------------------------------
@dataclass
class Waypoint:
    """Move to ``target(ctx)`` (position, gripper yaw or full rotation) with gripper ``grip``.

    The phase ends when the position error is below ``tol`` (and the rotation error below
    ``rot_tol``), after at least ``min_steps``; or after ``max_steps`` whatever the error. A phase
    with ``hold`` > 0 stays still for that many steps (gripper closing / opening).
    """

    name: str
    target: Callable[["Context"], np.ndarray] | None  # eef position; None = hold the phase-start position
    grip: float
    yaw: Callable[["Context"], float] | None = None  # None = the plan's default yaw
    rot: Callable[["Context"], np.ndarray] | None = None  # full target rotation (overrides yaw)
    tol: float = 0.01
    rot_tol: float = 0.08
    min_steps: int = 0
    max_steps: int = 60
    hold: int = 0
    speed: float | None = None  # max |a[:3]| for this phase (None = the episode's speed)
    on_enter: Callable[["Context"], None] | None = None


@dataclass
class Variation:
    """Per-episode variation of the expert."""

    gain: float = 1.0  # proportional gain on the position error
    rot_gain: float = 1.0
    speed: float = 1.0  # max |a[:3]| (unit action)
    noise_pos: float = 0.0  # std of Gaussian noise on a[:3]
    noise_rot: float = 0.0
    close_steps: int = 10
    open_steps: int = 6
    jitter: float = 0.0  # m, uniform xy jitter on grasp / place points
    height_jitter: float = 0.0  # m, uniform z jitter on hover heights

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "Variation":
        return cls(
            gain=float(rng.uniform(0.8, 1.2)),
            rot_gain=float(rng.uniform(0.8, 1.1)),
            speed=float(rng.uniform(0.8, 1.0)),
            noise_pos=float(rng.uniform(0.02, 0.06)),
            noise_rot=float(rng.uniform(0.005, 0.02)),
            close_steps=int(rng.integers(9, 13)),
            open_steps=int(rng.integers(5, 9)),
            jitter=0.004,
            height_jitter=0.02,
        )


@dataclass
class Context:
    scene: Scene
    obs: dict
    rng: np.random.Generator
    var: Variation
    memory: dict = field(default_factory=dict)

    def u(self, lo: float, hi: float) -> float:
        return float(self.rng.uniform(lo, hi))


class Expert:
    """Runs a plan of waypoints; one action per call.

    ``length`` is the step budget (the rollout stops after it); ``finished`` is True once the
    plan is exhausted (the expert then holds still with the last gripper command).
    """

    def __init__(self, plan: list[Waypoint], ctx: Context, max_steps: int, default_yaw: float = 0.0):
        self.plan = plan
        self.ctx = ctx
        self.length = int(max_steps)
        self.default_yaw = default_yaw
        self.stop_on_done = True
        self.idx = 0
        self.t = 0
        self.phase_t = 0
        self.phase_log: list[tuple[str, int]] = []
        self._anchor: np.ndarray | None = None
        self._last_grip = lenv.GRIPPER_OPEN
        self._entered = False

    @property
    def finished(self) -> bool:
        return self.idx >= len(self.plan)

    @property
    def phase(self) -> str:
        return self.plan[self.idx].name if not self.finished else "done"

    def _advance(self) -> None:
        self.phase_log.append((self.plan[self.idx].name, self.phase_t))
        self.idx += 1
        self.phase_t = 0
        self._entered = False

    def __call__(self, obs: dict) -> np.ndarray:
        ctx, var = self.ctx, self.ctx.var
        ctx.obs = obs
        eef, R = Scene.eef(obs)
        action = np.zeros(7)
        for _ in range(len(self.plan) + 1):  # skip phases that are already satisfied
            if self.finished:
                action[6] = self._last_grip
                self.t += 1
                return action
            wp = self.plan[self.idx]
            if not self._entered:
                self._entered = True
                self._anchor = eef.copy()
                if wp.on_enter is not None:
                    wp.on_enter(ctx)
            if wp.rot is not None:
                R_t = wp.rot(ctx)
            else:
                R_t = rot_z(wp.yaw(ctx) if wp.yaw is not None else self.default_yaw) @ R_DOWN
            target = wp.target(ctx) if wp.target is not None else self._anchor
            err = target - eef
            rerr = mat_to_axisangle(R_t @ R.T)
            if wp.hold > 0:
                if self.phase_t >= wp.hold:
                    self._advance()
                    continue
            elif self.phase_t >= wp.max_steps or (
                self.phase_t >= wp.min_steps and np.linalg.norm(err) < wp.tol and np.linalg.norm(rerr) < wp.rot_tol
            ):
                self._advance()
                continue
            break
        move = var.gain * err / POS_SCALE
        speed = wp.speed if wp.speed is not None else var.speed
        norm = np.linalg.norm(move)
        if norm > speed:
            move *= speed / norm
        action[:3] = move + ctx.rng.normal(0.0, var.noise_pos, 3)
        action[3:6] = var.rot_gain * rerr / ROT_SCALE + ctx.rng.normal(0.0, var.noise_rot, 3)
        action[:6] = np.clip(action[:6], -1.0, 1.0)
        action[6] = wp.grip
        self._last_grip = wp.grip
        self.phase_t += 1
        self.t += 1
        return action



# ------------------------------------------------------------------------------------------------
# Plan primitives
# ------------------------------------------------------------------------------------------------
O, C = lenv.GRIPPER_OPEN, lenv.GRIPPER_CLOSE
# A task's plan: built once per episode from the settled scene.
PlanBuilder = Callable[["Context"], "list[Waypoint]"]


def pick_and_place(
    ctx: Context,
    obj: str,
    place: Callable[[Context], np.ndarray],
    grasp_offset: Callable[[Context], np.ndarray] | np.ndarray = np.zeros(3),
    grasp_yaw: Callable[[Context], float] | None = None,
    hover: float = 0.10,
    carry_height: float = 0.10,
    release_height: float = 0.03,
    lift: float = 0.10,
) -> list[Waypoint]:
    """Pick `obj` (grasp point = its position + `grasp_offset`) and bring it so that its
    position is at ``place(ctx)`` + `release_height` (z), then open and retreat upwards.

    The carry uses the object-to-gripper offset measured after the lift, so the object (not the
    gripper) lands at the place point.
    """
    sc, var, mem = ctx.scene, ctx.var, ctx.memory
    jit = np.array([ctx.u(-var.jitter, var.jitter), ctx.u(-var.jitter, var.jitter), 0.0])
    hov = hover + ctx.u(0.0, var.height_jitter)
    carry = carry_height + ctx.u(0.0, var.height_jitter)
    place_jit = np.array([ctx.u(-var.jitter, var.jitter), ctx.u(-var.jitter, var.jitter), 0.0])

    def offset(c: Context) -> np.ndarray:
        return np.asarray(grasp_offset(c) if callable(grasp_offset) else grasp_offset, np.float64)

    def grasp_point(c: Context) -> np.ndarray:
        if "grasp_point" not in mem:
            mem["grasp_point"] = sc.body_pos(obj) + offset(c) + jit
        return mem["grasp_point"]

    def yaw(c: Context) -> float:
        if "grasp_yaw" not in mem:
            mem["grasp_yaw"] = float(grasp_yaw(c)) if grasp_yaw is not None else 0.0
        return mem["grasp_yaw"]

    def remember_offset(c: Context) -> None:
        eef, _ = Scene.eef(c.obs)
        mem["obj_to_eef"] = eef - sc.body_pos(obj)

    def place_eef(c: Context, dz: float) -> np.ndarray:
        p = place(c) + place_jit + mem.get("obj_to_eef", np.zeros(3))
        return p + np.array([0.0, 0.0, dz])

    return [
        Waypoint("pregrasp", lambda c: grasp_point(c) + [0, 0, hov], O, yaw=yaw, tol=0.015, rot_tol=0.1, max_steps=80),
        Waypoint("descend", lambda c: grasp_point(c), O, yaw=yaw, tol=0.006, max_steps=40, speed=0.6),
        Waypoint("close", None, C, yaw=yaw, hold=var.close_steps),
        Waypoint("lift", lambda c: grasp_point(c) + [0, 0, lift], C, yaw=yaw, tol=0.02, max_steps=40,
                 speed=0.7),
        Waypoint("carry", lambda c: place_eef(c, release_height + carry), C, yaw=yaw, tol=0.015, max_steps=90,
                 on_enter=remember_offset),
        Waypoint("lower", lambda c: place_eef(c, release_height), C, yaw=yaw, tol=0.008, max_steps=40, speed=0.5),
        Waypoint("release", None, O, yaw=yaw, hold=var.open_steps),
        Waypoint("retreat", lambda c: place_eef(c, release_height + 0.08), O, yaw=yaw, tol=0.02, max_steps=30),
    ]
