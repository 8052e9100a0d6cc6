"""Pipeline demo data: a randomised scripted motion rolled out in the LIBERO simulator.

Every episode starts from one of the benchmark's fixed init states (episode k uses init state k),
the controller is refreshed, the scene settles for NUM_STEPS_WAIT dummy steps (not recorded), then
the scripted motion runs: move above an object of interest (position from the observation),
descend, close the gripper, lift, open, move away. Offsets, gains, phase lengths and noise vary
per episode from ``seed``. The demos do not solve the task; they exercise the pipeline. The files
are written by `libero_eval.demos.recording.record_task_file` (`scripts/make_demo_dataset.py` is
the CLI).
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from libero_eval import env as lenv
from libero_eval.demos.recording import Episode, TaskRecording, record_task_file

log = logging.getLogger(__name__)

POS_SCALE = 0.05  # m per unit OSC action (robosuite osc_pose output_max[:3])
GENERATOR = "scripts/make_demo_dataset.py"


@dataclass
class MotionParams:
    """Per-episode variation of the scripted motion (drawn by `sample_motion`)."""

    phase_steps: tuple[int, ...]  # approach, descend, close, lift, open, away
    gain: float  # fraction of the remaining distance commanded per step
    xy_offset: tuple[float, float]  # m, added to the object position
    hover_height: float  # m above the object for the approach
    grasp_height: float  # m above the object position at the bottom of the descent
    lift_height: float  # m
    away: tuple[float, float, float]  # m, final retreat displacement
    noise_pos: float  # std of Gaussian noise on a[:3] (unit action scale)
    noise_rot: float  # std of Gaussian noise on a[3:6]


PHASES = ("approach", "descend", "close", "lift", "open", "away")
_BASE_PHASE_RANGES = ((14, 20), (8, 12), (5, 7), (8, 12), (3, 5), (6, 10))


def sample_motion(rng: np.random.Generator, length_scale: float = 1.0) -> MotionParams:
    steps = tuple(
        max(2, int(round(rng.integers(lo, hi + 1) * length_scale))) for lo, hi in _BASE_PHASE_RANGES
    )
    ang = rng.uniform(0, 2 * np.pi)
    dist = rng.uniform(0.06, 0.12)
    return MotionParams(
        phase_steps=steps,
        gain=float(rng.uniform(0.45, 0.9)),
        xy_offset=tuple(float(x) for x in rng.uniform(-0.015, 0.015, size=2)),
        hover_height=float(rng.uniform(0.08, 0.14)),
        grasp_height=float(rng.uniform(0.0, 0.03)),
        lift_height=float(rng.uniform(0.08, 0.14)),
        away=(float(dist * np.cos(ang)), float(dist * np.sin(ang)), float(rng.uniform(0.0, 0.05))),
        noise_pos=float(rng.uniform(0.02, 0.08)),
        noise_rot=float(rng.uniform(0.005, 0.03)),
    )


def target_object(env, obs: dict) -> str:
    """Name of the object whose ``<name>_pos`` observation the motion goes to.

    The env's objects of interest first (regions such as ``wooden_cabinet_1_middle_region`` map to
    an observed object whose name prefixes them), else the first observed object.
    """
    observed = [k[: -len("_pos")] for k in obs if k.endswith("_pos") and not k.startswith("robot") and "_to_" not in k]
    for name in getattr(env, "obj_of_interest", []) or []:
        if name in observed:
            return name
        prefixed = [o for o in observed if name.startswith(o)]
        if prefixed:
            return max(prefixed, key=len)
    if not observed:
        raise RuntimeError("no object positions in the observation; cannot script a motion")
    return observed[0]


class ScriptedMotion:
    """Reach-grasp-lift-release-retreat, one 7-d OSC delta action per call."""

    def __init__(self, params: MotionParams, object_name: str, rng: np.random.Generator):
        self.p = params
        self.obj = object_name
        self.rng = rng
        self.bounds = np.cumsum(params.phase_steps)
        self.t = 0
        self._anchor: np.ndarray | None = None  # eef position at the start of lift / away
        self._phase = -1

    @property
    def length(self) -> int:
        return int(self.bounds[-1])

    def phase(self, t: int) -> int:
        return int(np.searchsorted(self.bounds, t, side="right"))

    def __call__(self, obs: dict) -> np.ndarray:
        p, t = self.p, self.t
        ph = self.phase(t)
        eef = np.asarray(obs["robot0_eef_pos"], np.float64)
        if ph != self._phase:
            self._anchor, self._phase = eef.copy(), ph
        obj = np.asarray(obs[f"{self.obj}_pos"], np.float64)
        above = obj + np.array([p.xy_offset[0], p.xy_offset[1], 0.0])
        name = PHASES[min(ph, len(PHASES) - 1)]
        grip = lenv.GRIPPER_CLOSE if name in ("close", "lift") else lenv.GRIPPER_OPEN
        target = None
        if name == "approach":
            target = above + [0.0, 0.0, p.hover_height]
        elif name == "descend":
            target = above + [0.0, 0.0, p.grasp_height]
        elif name == "lift":
            target = self._anchor + [0.0, 0.0, p.lift_height]
        elif name == "away":
            target = self._anchor + np.asarray(p.away)
        action = np.zeros(7)
        if target is not None:  # move: proportional step + noise; close/open: hold still (no-ops)
            action[:3] = p.gain * (target - eef) / POS_SCALE + self.rng.normal(0, p.noise_pos, 3)
            action[3:6] = self.rng.normal(0, p.noise_rot, 3)
        action[:6] = np.clip(action[:6], -1.0, 1.0)
        action[6] = grip
        self.t += 1
        return action


# ------------------------------------------------------------------------------------------------
# Demo files
# ------------------------------------------------------------------------------------------------
def motion_episode(length_scale: float, only_success: bool):
    """The episode function of `record_task_file`: episode k from init state k, a motion drawn from
    ``(seed, task_id, k)``; with ``only_success`` an episode that does not end in success is dropped."""

    def episode(rec: TaskRecording, ep: int) -> Episode:
        rng = np.random.default_rng([rec.seed, rec.task_id, ep])
        init_idx = ep % len(rec.init_states)
        params = sample_motion(rng, length_scale)
        demo, motion = rec.rollout(rec.env, rec.init_states[init_idx],
                                   lambda obs: ScriptedMotion(params, target_object(rec.env, obs), rng))
        steps = motion.length + lenv.NUM_STEPS_WAIT
        if only_success and not demo["success"]:
            return Episode(None, {}, steps)
        attrs = {"init_state_index": np.int64(init_idx), "generator_seed": np.int64(rec.seed),
                 "success": np.bool_(demo["success"]), "target_object": motion.obj,
                 "motion_params": json.dumps(asdict(motion.p))}
        return Episode(demo, attrs, steps)

    return episode


def make_task_file(
    suite: str,
    task_id: int,
    episodes: int,
    out: str | Path,
    fmt: str = "raw",
    resolution: int | None = None,
    seed: int = 0,
    length_scale: float = 1.0,
    only_success: bool = False,
    overwrite: bool = True,
    progress: bool = True,
) -> Path | None:
    """Roll out `episodes` scripted demos of one task and write ``<out>/<suite>/<task>_demo.hdf5``.

    Returns the path, or None when nothing was kept (``only_success`` and no success).
    """
    return record_task_file(
        suite, task_id, out, motion_episode(length_scale, only_success), episodes=episodes, generator=GENERATOR,
        extra_args={"length_scale": length_scale, "only_success": only_success}, fmt=fmt, resolution=resolution,
        seed=seed, overwrite=overwrite, progress=progress,
        robot_init_noise=0.0)  # episodes jump to a benchmark init state, which holds the arm pose


def make_dataset(suite: str, tasks: Sequence[int], episodes: int, out: str | Path, **kwargs) -> list[Path]:
    """`make_task_file` for each task id; returns the written files."""
    lenv.check_render_backend()
    paths = []
    for task_id in tasks:
        p = make_task_file(suite, task_id, episodes, out, **kwargs)
        if p is not None:
            paths.append(p)
    return paths
