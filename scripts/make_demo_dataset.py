"""Make LIBERO demo datasets by rolling out a scripted motion in the real LIBERO simulator.

The files are written in the layout of LIBERO's own ``scripts/create_dataset.py``
(github.com/Lifelong-Robot-Learning/LIBERO; a file made by that code is ``tests/fixtures/libero_format``), so the data path of the repo is exercised on
real simulator files without any download:

- ``--format raw`` (default, 128x128): ``states[t]`` is the mujoco state BEFORE ``actions[t]``,
  ``obs/*[t]`` is observed AFTER ``actions[t]``; the first ``CAP_INDEX = 5`` recorded steps are
  dropped; images as rendered (OpenGL convention, upside-down); rewards/dones zero but the last 1.
- ``--format no_noops`` (OpenVLA-style regeneration, 256x256): the observation is recorded BEFORE
  each action, no-op actions (no motion, unchanged gripper) are skipped and not executed, and with
  ``--only_success`` only episodes that end in task success are kept.

Every episode starts from one of the benchmark's fixed init states (episode k uses init state k),
the controller is refreshed, the scene settles for NUM_STEPS_WAIT dummy steps (not recorded), then
the scripted motion runs: move above an object of interest (position from the observation),
descend, close the gripper, lift, open, move away. Offsets, gains, phase lengths and noise vary
per episode from ``--seed``. The demos do not solve the task; they are for exercising the pipeline.

Usage::

    python -m scripts.make_demo_dataset --suite libero_goal --tasks 0 1 --episodes 3 \
        --out data/datasets/demo_libero
    # -> data/datasets/demo_libero/libero_goal/<task_name>_demo.hdf5

Each file is written under a temporary name and renamed when complete.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import h5py
import numpy as np

from configs.errors import exit_cli
from configs.suites import LIBERO_SUITES, check_suite
from policy.libero_mapping import noop_mask
from libero_eval import env as lenv
from utils.atomic import atomic_path

log = logging.getLogger("make_demo_dataset")

CAP_INDEX = 5  # create_dataset.py drops the first 5 recorded steps of every demo
FORMATS = ("raw", "no_noops")
DEFAULT_RESOLUTION = {"raw": 128, "no_noops": 256}
# create_dataset.py records with this camera order (it shows in env_args).
DATASET_CAMERAS = ("robot0_eye_in_hand", "agentview")
POS_SCALE = 0.05  # m per unit OSC action (robosuite osc_pose output_max[:3])
GENERATOR = "scripts/make_demo_dataset.py"


# ------------------------------------------------------------------------------------------------
# Scripted motion
# ------------------------------------------------------------------------------------------------
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


def is_noop(action: np.ndarray, prev_action: np.ndarray | None) -> bool:
    """The data code's no-op rule (`noop_mask`), so demos and ``filter_noops`` agree on what a no-op is.

    As in OpenVLA's regeneration, ``prev_action`` is the last *executed* action (None before any).
    """
    pair = [action] if prev_action is None else [prev_action, action]
    return bool(noop_mask(np.stack(pair))[-1])


# ------------------------------------------------------------------------------------------------
# Rollouts
# ------------------------------------------------------------------------------------------------
def _obs_record(obs: dict, inner) -> dict:
    from robosuite.utils.transform_utils import quat2axisangle

    ee_pos = np.asarray(obs["robot0_eef_pos"], np.float64)
    ee_ori = np.asarray(quat2axisangle(np.asarray(obs["robot0_eef_quat"])), np.float64)
    return {
        "agentview_rgb": np.asarray(obs["agentview_image"], np.uint8),
        "eye_in_hand_rgb": np.asarray(obs["robot0_eye_in_hand_image"], np.uint8),
        "ee_pos": ee_pos,
        "ee_ori": ee_ori,
        "ee_states": np.concatenate([ee_pos, ee_ori]),
        "gripper_states": np.asarray(obs["robot0_gripper_qpos"], np.float64),
        "joint_states": np.asarray(obs["robot0_joint_pos"], np.float64),
        "robot_states": np.asarray(inner.get_robot_state_vector(obs), np.float64),
    }


def _start_episode(env, init_state: np.ndarray | None) -> dict:
    """Reset, jump to `init_state` (None: keep the placement env.reset() sampled), settle."""
    env.reset()
    if init_state is None:
        lenv.refresh_controller(env, lenv.GRIPPER_OPEN)
    else:
        lenv.reset_to_state(env, init_state, lenv.GRIPPER_OPEN)
    return lenv.settle(env)


def _stack(steps: list[dict], states: list, actions: list) -> dict:
    out = {k: np.stack([s[k] for s in steps]) for k in steps[0]}
    out["states"] = np.stack(states).astype(np.float64)
    out["actions"] = np.stack(actions).astype(np.float64)
    return out


def rollout_raw(env, init_state: np.ndarray | None, make_motion: Callable[[dict], ScriptedMotion]) -> tuple[dict, ScriptedMotion]:
    """Record (state before, action, obs after) per step; drop the first CAP_INDEX steps.

    The motion runs for ``motion.length`` steps, or until the env reports success when the
    motion has ``stop_on_done`` set (the scripted expert: episodes end at ``done``)."""
    inner = lenv._inner(env)
    obs = _start_episode(env, init_state)
    motion = make_motion(obs)
    states, actions, steps, done = [], [], [], False
    for _ in range(motion.length):
        action = motion(obs)
        states.append(lenv.sim_state(env))
        obs, _, done, _ = env.step(action)
        actions.append(action)
        steps.append(_obs_record(obs, inner))
        if done and getattr(motion, "stop_on_done", False):
            break
    demo = _stack(steps[CAP_INDEX:], states[CAP_INDEX:], actions[CAP_INDEX:])
    demo["success"] = bool(done)
    return demo, motion


def rollout_no_noops(env, init_state: np.ndarray | None, make_motion: Callable[[dict], ScriptedMotion]) -> tuple[dict, ScriptedMotion]:
    """Record (state before, obs before, action); no-op actions are skipped, not executed.

    Stops at success like `rollout_raw` when the motion has ``stop_on_done`` set."""
    inner = lenv._inner(env)
    obs = _start_episode(env, init_state)
    motion = make_motion(obs)
    states, actions, steps, done, prev = [], [], [], False, None
    for _ in range(motion.length):
        action = motion(obs)
        if is_noop(action, prev):
            continue
        states.append(lenv.sim_state(env))
        steps.append(_obs_record(obs, inner))
        actions.append(action)
        obs, _, done, _ = env.step(action)
        prev = action
        if done and getattr(motion, "stop_on_done", False):
            break
    demo = _stack(steps, states, actions)
    demo["success"] = bool(done)
    return demo, motion


# ------------------------------------------------------------------------------------------------
# Writing (layout of LIBERO's create_dataset.py)
# ------------------------------------------------------------------------------------------------
def file_attrs(env, suite, task_id: int, task, resolution: int, fmt: str, seed: int, args: dict) -> dict:
    """``data`` group attributes, as create_dataset.py writes them, plus provenance."""
    import robosuite

    import libero.libero.envs.bddl_utils as bddl_utils

    bddl_abs = lenv.task_bddl_path(suite, task_id)
    bddl_rel = f"libero/libero/bddl_files/{task.problem_folder}/{task.bddl_file}"
    inner = lenv._inner(env)
    env_kwargs = {
        "robots": ["Panda"],
        "controller_configs": robosuite.load_controller_config(default_controller="OSC_POSE"),
        "bddl_file_name": bddl_rel,
        "has_renderer": False,
        "has_offscreen_renderer": True,
        "ignore_done": True,
        "use_camera_obs": True,
        "camera_depths": False,
        "camera_names": list(DATASET_CAMERAS),
        "reward_shaping": True,
        "control_freq": lenv.CONTROL_FREQ,
        "camera_heights": resolution,
        "camera_widths": resolution,
        "camera_segmentations": None,
    }
    problem_info = bddl_utils.get_problem_info(str(bddl_abs))
    env_args = {
        "type": 1,
        "env_name": type(inner).__name__,
        "problem_name": problem_info["problem_name"],
        "bddl_file": bddl_rel,
        "env_kwargs": env_kwargs,
    }
    return {
        "env_name": type(inner).__name__,
        "problem_info": json.dumps(problem_info),
        "env_args": json.dumps(env_args),
        "bddl_file_name": bddl_rel,
        "bddl_file_content": Path(bddl_abs).read_text(encoding="utf-8"),
        "macros_image_convention": "opengl",
        # provenance (not written by create_dataset.py; readers ignore unknown attrs)
        "layout": fmt,
        "generator": GENERATOR,
        "generator_seed": np.int64(seed),
        "generator_args": json.dumps(args, sort_keys=True),
    }


def write_demo(grp: h5py.Group, demo: dict, model_xml: str, extra_attrs: dict) -> int:
    """One ``demo_i`` group; returns its number of samples."""
    n = len(demo["actions"])
    obs_grp = grp.create_group("obs")
    for key in ("gripper_states", "joint_states", "ee_states", "ee_pos", "ee_ori", "agentview_rgb", "eye_in_hand_rgb"):
        obs_grp.create_dataset(key, data=demo[key])
    grp.create_dataset("actions", data=demo["actions"])
    grp.create_dataset("states", data=demo["states"])
    grp.create_dataset("robot_states", data=demo["robot_states"])
    flags = np.zeros(n, np.uint8)
    flags[-1] = 1
    grp.create_dataset("rewards", data=flags)
    grp.create_dataset("dones", data=flags.copy())
    grp.attrs["num_samples"] = np.int64(n)
    grp.attrs["model_file"] = model_xml
    grp.attrs["init_state"] = demo["states"][0]
    for k, v in extra_attrs.items():
        grp.attrs[k] = v
    return n


def output_path(out: str | Path, suite: str, task_name: str) -> Path:
    return Path(out) / suite / f"{task_name}_demo.hdf5"


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
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    if episodes < 1:
        raise ValueError("episodes must be >= 1")
    resolution = int(resolution or DEFAULT_RESOLUTION[fmt])
    suite_obj = lenv.get_suite(suite)
    task = lenv.get_task(suite_obj, task_id)
    path = output_path(out, suite, task.name)
    if path.exists() and not overwrite:
        log.info("%s exists, skipping (use --overwrite)", path)
        return path
    init_states = lenv.get_task_init_states(suite_obj, task_id)
    env = lenv.make_env(
        suite_obj, task_id, resolution=resolution, seed=seed, camera_names=DATASET_CAMERAS,
        ignore_done=True, reward_shaping=True,
    )
    args = {"suite": suite, "task_id": task_id, "episodes": episodes, "format": fmt, "resolution": resolution,
            "seed": seed, "length_scale": length_scale, "only_success": only_success}
    rollout = rollout_raw if fmt == "raw" else rollout_no_noops
    path.parent.mkdir(parents=True, exist_ok=True)
    kept, total, steps_run, t0 = 0, 0, 0, time.perf_counter()
    try:
        with atomic_path(path) as tmp:
            with h5py.File(tmp, "w") as f:
                data = f.create_group("data")
                for k, v in file_attrs(env, suite_obj, task_id, task, resolution, fmt, seed, args).items():
                    data.attrs[k] = v
                model_xml = lenv._inner(env).sim.model.get_xml()
                episode_iter = range(episodes)
                if progress:
                    from tqdm import tqdm

                    episode_iter = tqdm(episode_iter, desc=f"{suite}/{task.name}", unit="ep", leave=False)
                for ep in episode_iter:
                    rng = np.random.default_rng([seed, task_id, ep])
                    init_idx = ep % len(init_states)
                    params = sample_motion(rng, length_scale)
                    demo, motion = rollout(env, init_states[init_idx],
                                           lambda obs: ScriptedMotion(params, target_object(env, obs), rng))
                    steps_run += motion.length + lenv.NUM_STEPS_WAIT
                    if only_success and not demo["success"]:
                        continue
                    extra = {"init_state_index": np.int64(init_idx), "generator_seed": np.int64(seed),
                             "success": np.bool_(demo["success"]), "target_object": motion.obj,
                             "motion_params": json.dumps(asdict(motion.p))}
                    total += write_demo(data.create_group(f"demo_{kept}"), demo, model_xml, extra)
                    kept += 1
                data.attrs["num_demos"] = np.int64(kept)
                data.attrs["total"] = np.int64(total)
            dt = time.perf_counter() - t0
            log.info("%s: %d/%d demos, %d samples, %.1f s (%.3f s per simulated step)",
                     path, kept, episodes, total, dt, dt / max(steps_run, 1))
            if kept == 0:
                log.warning("%s: no demo kept (only_success and no episode succeeded); no file written", path)
                tmp.unlink()  # atomic_path then writes nothing
                return None
        return path
    finally:
        lenv.close_env(env)


def make_dataset(
    suite: str,
    tasks: Sequence[int],
    episodes: int,
    out: str | Path,
    **kwargs,
) -> list[Path]:
    """`make_task_file` for each task id; returns the written files."""
    lenv.check_render_backend()
    paths = []
    for task_id in tasks:
        p = make_task_file(suite, task_id, episodes, out, **kwargs)
        if p is not None:
            paths.append(p)
    return paths


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", default="libero_goal", help=f"one of {', '.join(LIBERO_SUITES)}")
    ap.add_argument("--tasks", type=int, nargs="+", default=[0], help="task ids within the suite")
    ap.add_argument("--episodes", type=int, default=3, help="demos per task (episode k starts from init state k)")
    ap.add_argument("--out", default="data/datasets/demo_libero", help="files go to <out>/<suite>/<task>_demo.hdf5")
    ap.add_argument("--format", choices=FORMATS, default="raw",
                    help="raw: LIBERO create_dataset layout; no_noops: OpenVLA-style regeneration")
    ap.add_argument("--resolution", type=int, default=None, help="camera size (default 128 raw, 256 no_noops)")
    ap.add_argument("--only_success", action="store_true", help="keep only episodes that end in task success")
    ap.add_argument("--seed", type=int, default=0, help="env seed and motion-variation seed")
    ap.add_argument("--length_scale", type=float, default=1.0, help="scale all phase lengths (shorter demos < 1)")
    ap.add_argument("--no_overwrite", action="store_true", help="skip tasks whose file already exists")
    ap.add_argument("--no_progress", action="store_true", help="disable the tqdm progress bar")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        check_suite(args.suite, "--suite")
        paths = make_dataset(
            args.suite, args.tasks, args.episodes, args.out, fmt=args.format, resolution=args.resolution,
            seed=args.seed, length_scale=args.length_scale, only_success=args.only_success,
            overwrite=not args.no_overwrite, progress=not args.no_progress,
        )
    except (ValueError, lenv.RenderBackendError) as exc:
        log.error("%s", exc)
        return 2
    for p in paths:
        print(p)
    return 0


if __name__ == "__main__":
    exit_cli(main)
