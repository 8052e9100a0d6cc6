"""A scripted expert that solves LIBERO tasks from privileged simulator state.

The expert reads object / fixture poses and joint positions from the simulator (``env.env.sim``
and the observation's ``<obj>_pos`` / ``<obj>_quat``) and follows a per-task state machine of
waypoints (pre-grasp above the object, descend, close, lift, carry, lower, release, retreat)
with a proportional controller. It emits ordinary 7-d OSC_POSE delta actions: ``a[:3]`` in units
of 0.05 m, ``a[3:6]`` an axis-angle rotation in units of 0.5 rad (world frame), ``a[6]`` the
gripper (-1 open, +1 close), all clipped to [-1, 1]. Each episode draws small variations from
its own rng (grasp offsets, heights, gains, speed limit, action noise, hold lengths), so demos
are not identical.

Measure the success rate on a task's standard init states (the evaluation protocol: reset,
``reset_to_state``, ``NUM_STEPS_WAIT`` settle steps, at most the suite's step budget, success =
the env's ``done``)::

    python -m scripts.scripted_expert --suite libero_goal --task put_the_bowl_on_the_stove \
        --eval-init-states 50

Measured on the 50 benchmark init states (seed 0): libero_goal put_the_bowl_on_the_stove 50/50,
put_the_bowl_on_the_plate 49/50, put_the_cream_cheese_in_the_bowl 50/50, turn_on_the_stove 50/50;
libero_object alphabet_soup 50/50. The other libero_object plans use one generic grasp from the
object's collision boxes and are NOT validated: cream_cheese reached only 27/50 (the flat box:
the descent stalls above it), the rest were tried on 2 init states only. "open the middle drawer"
is not supported (a top-down grasp is blocked by the top drawer's handle, a frontal grasp's
hand hits the plate in front of the cabinet).

``--task`` takes a task id or a task name (``put_the_bowl_on_the_stove`` or the instruction with
spaces); ``--task all`` runs every supported task of the suite. ``--random-resets N`` measures on
``env.reset()`` placements instead (what the expert datasets are made from).
"""
from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from configs.errors import exit_cli
from libero_eval import env as lenv

log = logging.getLogger("scripted_expert")

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
        self.inner = lenv._inner(env)
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
# Task plans
# ------------------------------------------------------------------------------------------------
O, C = lenv.GRIPPER_OPEN, lenv.GRIPPER_CLOSE


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


# --- libero_goal (one scene: cabinet, stove, wine rack, bowl, plate, cream cheese, wine bottle) ---
BOWL = "akita_black_bowl_1"
BOWL_RIM = 0.047  # m, radius of the bowl's wall from its centre
BOWL_GRASP_Z = 0.035  # m above the bowl's body position (the wall's top is ~0.05 above it)


def _bowl_grasp(c: Context) -> np.ndarray:
    # Grip the wall on the far side from the robot's y axis ("+y" wall: fingers close along y).
    return np.array([0.0, BOWL_RIM, BOWL_GRASP_Z])


def plan_bowl_on(place: Callable[[Context], np.ndarray], release_height: float = 0.03, carry: float = 0.10):
    def build(ctx: Context) -> list[Waypoint]:
        return pick_and_place(ctx, BOWL, place, grasp_offset=_bowl_grasp, release_height=release_height,
                              carry_height=carry)

    return build


def plan_cream_cheese_in_bowl(ctx: Context) -> list[Waypoint]:
    sc = ctx.scene
    return pick_and_place(
        ctx, "cream_cheese_1", lambda c: sc.body_pos(BOWL) + [0, 0, 0.02],
        grasp_offset=np.array([0.0, 0.0, 0.0]),
        grasp_yaw=lambda c: wrap_half_pi(yaw_of(sc.body_quat_xyzw("cream_cheese_1"))),
        release_height=0.04,
    )


STOVE_KNOB = "flat_stove_1_button"  # body of the stove's knob (hinge about z; on at >= 0.5 rad)
STOVE_KNOB_JOINT = "flat_stove_1_button"
KNOB_GRASP_Z = 0.035  # m above the knob body (its bar spans ~0.005..0.05 above it)
KNOB_TURN = 0.9  # rad of wrist rotation (the task needs >= 0.5 rad of knob rotation)


def plan_turn_on_stove(ctx: Context) -> list[Waypoint]:
    """Grip the knob's bar from above (fingers close across it) and twist the wrist about z."""
    sc, var = ctx.scene, ctx.var
    hov = 0.08 + ctx.u(0.0, var.height_jitter)
    turn = KNOB_TURN + ctx.u(-0.1, 0.1)
    jit = np.array([ctx.u(-var.jitter, var.jitter), ctx.u(-0.002, 0.002), 0.0])
    mem = ctx.memory

    def knob(c: Context) -> np.ndarray:
        if "knob" not in mem:
            mem["knob"] = sc.body_pos(STOVE_KNOB) + [0.0, 0.0, KNOB_GRASP_Z] + jit
        return mem["knob"]

    def knob_yaw(c: Context) -> float:  # the bar runs along the knob body's y axis at qpos 0
        return wrap_half_pi(yaw_of(sc.body_quat_xyzw(STOVE_KNOB)) - np.pi / 2)

    def twist_to(c: Context) -> float:  # fixed when the twist starts (the knob turns with the gripper)
        if "twist_to" not in mem:
            mem["twist_to"] = knob_yaw(c) + turn
        return mem["twist_to"]

    return [
        Waypoint("pregrasp", lambda c: knob(c) + [0, 0, hov], O, yaw=knob_yaw, tol=0.012, rot_tol=0.08, max_steps=80),
        Waypoint("descend", knob, O, yaw=knob_yaw, tol=0.006, max_steps=40, speed=0.6),
        Waypoint("close", None, C, yaw=knob_yaw, hold=var.close_steps),
        Waypoint("twist", knob, C, yaw=twist_to, tol=0.01, rot_tol=0.05, max_steps=60),
        Waypoint("release", None, O, yaw=twist_to, hold=var.open_steps),
        Waypoint("retreat", lambda c: knob(c) + [0, 0, hov], O, yaw=twist_to, tol=0.02, max_steps=30),
    ]


# --- libero_object (floor scene, basket) ---
def collision_box(scene: Scene, obj: str) -> tuple[np.ndarray, np.ndarray]:
    """Bounds (lo, hi) of `obj`'s collision boxes in its body frame (an upright object's size)."""
    m, d = scene.model, scene.sim.data
    body = m.body_name2id(f"{obj}_main")
    Rb, pb = d.body_xmat[body].reshape(3, 3), d.body_xpos[body]
    lo, hi = np.full(3, np.inf), np.full(3, -np.inf)
    signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], np.float64)
    for g in range(m.ngeom):
        name = m.body_id2name(m.geom_bodyid[g]) or ""
        if not name.startswith(obj) or not m.geom_contype[g] or m.geom_type[g] != 6:
            continue
        corners = d.geom_xpos[g] + (signs * m.geom_size[g]) @ d.geom_xmat[g].reshape(3, 3).T
        local = (corners - pb) @ Rb
        lo, hi = np.minimum(lo, local.min(0)), np.maximum(hi, local.max(0))
    if not np.isfinite(lo).all():
        raise ValueError(f"{obj} has no collision boxes")
    return lo, hi


def plan_object_in_basket(obj: str):
    """Grasp `obj` from above (fingers across its narrower side, up to 2.5 cm below its top) and
    drop it into the basket from a few centimetres above the basket's rim."""

    def build(ctx: Context) -> list[Waypoint]:
        sc = ctx.scene
        lo, hi = collision_box(sc, obj)
        height = hi[2] - lo[2]
        grasp_z = hi[2] - min(0.025, 0.5 * height) + ctx.u(-0.003, 0.003)
        size = hi[:2] - lo[:2]
        centre = np.array([(hi[0] + lo[0]) / 2, (hi[1] + lo[1]) / 2, grasp_z])
        # fingers open along the gripper's y: along the object's y when its x side is the longer
        extra = 0.0 if size[0] >= size[1] else np.pi / 2

        def grasp_offset(c: Context) -> np.ndarray:
            R = quat_xyzw_to_mat(sc.body_quat_xyzw(obj))
            return R @ centre

        def yaw(c: Context) -> float:
            return wrap_half_pi(yaw_of(sc.body_quat_xyzw(obj)) + extra)

        return pick_and_place(
            ctx, obj, lambda c: sc.body_pos("basket_1") + [0.0, 0.0, 0.0],
            grasp_offset=grasp_offset, grasp_yaw=yaw,
            hover=0.12, carry_height=0.14, release_height=0.10,
        )

    return build


OBJECT_SUITE_TARGETS = {
    "alphabet_soup": "alphabet_soup_1", "cream_cheese": "cream_cheese_1", "salad_dressing": "salad_dressing_1",
    "bbq_sauce": "bbq_sauce_1", "ketchup": "ketchup_1", "tomato_sauce": "tomato_sauce_1", "butter": "butter_1",
    "milk": "milk_1", "chocolate_pudding": "chocolate_pudding_1", "orange_juice": "orange_juice_1",
}


# (suite, task name) -> plan builder
TASKS: dict[tuple[str, str], Callable[[Context], list[Waypoint]]] = {
    ("libero_goal", "put_the_bowl_on_the_stove"): plan_bowl_on(
        lambda c: c.scene.site_pos("flat_stove_1_cook_region") + [0, 0, 0.035], release_height=0.03),
    ("libero_goal", "put_the_bowl_on_the_plate"): plan_bowl_on(
        lambda c: c.scene.body_pos("plate_1") + [0, 0, 0.0], release_height=0.03),
    ("libero_goal", "put_the_cream_cheese_in_the_bowl"): plan_cream_cheese_in_bowl,
    ("libero_goal", "turn_on_the_stove"): plan_turn_on_stove,
}
TASKS.update({("libero_object", f"pick_up_the_{name}_and_place_it_in_the_basket"): plan_object_in_basket(obj)
              for name, obj in OBJECT_SUITE_TARGETS.items()})


def supported_tasks(suite: str) -> list[str]:
    return [name for (s, name) in TASKS if s == suite]


def make_expert(env, obs: dict, suite: str, task_name: str, rng: np.random.Generator,
                variation: Variation | None = None, max_steps: int | None = None) -> Expert:
    """The expert for one episode, built from the current (settled) scene."""
    key = (suite, task_name)
    if key not in TASKS:
        raise ValueError(f"no scripted expert for {suite}/{task_name}; supported: {supported_tasks(suite)}")
    var = variation if variation is not None else Variation.sample(rng)
    ctx = Context(Scene(env), obs, rng, var)
    plan = TASKS[key](ctx)
    return Expert(plan, ctx, max_steps if max_steps is not None else lenv.max_steps(suite))


# ------------------------------------------------------------------------------------------------
# Evaluation
# ------------------------------------------------------------------------------------------------
def resolve_task(suite_obj, task: str | int) -> int:
    """Task id from an id, a task name or an instruction."""
    s = str(task).strip()
    if s.isdigit():
        lenv.get_task(suite_obj, int(s))
        return int(s)
    key = s.replace(" ", "_").lower()
    for i in range(suite_obj.n_tasks):
        if suite_obj.get_task(i).name.lower() == key:
            return i
    raise ValueError(f"unknown task {task!r} in {suite_obj.name}")


def run_episode(env, suite: str, task_name: str, rng: np.random.Generator, init_state: np.ndarray | None,
                variation: Variation | None = None) -> dict:
    """One closed-loop expert episode (no recording). ``init_state`` None = keep env.reset()'s."""
    from scripts.make_demo_dataset import _start_episode

    obs = _start_episode(env, init_state)  # reset (+ init state), NUM_STEPS_WAIT settle steps
    expert = make_expert(env, obs, suite, task_name, rng, variation)
    done, t = False, 0
    for t in range(1, expert.length + 1):
        obs, _, done, _ = env.step(expert(obs))
        if done:
            break
    return {"success": bool(done), "steps": t, "phase": expert.phase, "phases": expert.phase_log}


def evaluate(suite: str, task: str | int, n_init: int = 50, random_resets: int = 0, seed: int = 0,
             verbose: bool = False) -> dict:
    suite_obj = lenv.get_suite(suite)
    task_id = resolve_task(suite_obj, task)
    name = suite_obj.get_task(task_id).name
    env = lenv.make_env(suite_obj, task_id, seed=seed, use_camera_obs=False)
    results = []
    t0 = time.perf_counter()
    try:
        if random_resets:
            for ep in range(random_resets):
                env.seed(int(np.random.SeedSequence([seed, task_id, ep, 1]).generate_state(1)[0]))
                rng = np.random.default_rng([seed, task_id, ep])
                results.append(run_episode(env, suite, name, rng, None))
                if verbose:
                    print(ep, results[-1], flush=True)
        else:
            init_states = lenv.get_task_init_states(suite_obj, task_id)
            for k in range(min(n_init, len(init_states))):
                rng = np.random.default_rng([seed, task_id, k])
                results.append(run_episode(env, suite, name, rng, init_states[k]))
                if verbose:
                    print(k, results[-1], flush=True)
    finally:
        lenv.close_env(env)
    dt = time.perf_counter() - t0
    succ = [r["success"] for r in results]
    steps = [r["steps"] for r in results if r["success"]]
    return {
        "suite": suite, "task_id": task_id, "task": name, "episodes": len(results),
        "successes": int(sum(succ)), "success_rate": float(np.mean(succ)) if succ else 0.0,
        "mean_steps_success": float(np.mean(steps)) if steps else float("nan"),
        "max_steps_success": int(max(steps)) if steps else 0,
        "failures": [i for i, s in enumerate(succ) if not s],
        "fail_phases": [results[i]["phase"] for i, s in enumerate(succ) if not s],
        "wall_s": dt,
    }


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--suite", default="libero_goal")
    ap.add_argument("--task", nargs="+", default=["all"], help="task ids / names, or 'all' (supported ones)")
    ap.add_argument("--eval-init-states", type=int, default=50, help="episodes from the benchmark init states 0..N-1")
    ap.add_argument("--random-resets", type=int, default=0, help="episodes from env.reset() placements instead")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    tasks = supported_tasks(args.suite) if args.task == ["all"] else args.task
    worst = 1.0
    for task in tasks:
        r = evaluate(args.suite, task, args.eval_init_states, args.random_resets, args.seed, args.verbose)
        worst = min(worst, r["success_rate"])
        src = f"{r['episodes']} random resets" if args.random_resets else f"init states 0..{r['episodes'] - 1}"
        print(f"{r['suite']} task {r['task_id']} {r['task']}: {r['successes']}/{r['episodes']} "
              f"({100 * r['success_rate']:.0f}%) on {src}; steps to success mean {r['mean_steps_success']:.0f} "
              f"max {r['max_steps_success']}; failures {r['failures']} (phase {r['fail_phases']}); "
              f"{r['wall_s']:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    exit_cli(main)
