"""Record simulator episodes and write them in the layout of LIBERO's own ``scripts/create_dataset.py``.

(github.com/Lifelong-Robot-Learning/LIBERO; a file made by that code is ``tests/fixtures/libero_format``.)

- ``raw`` (128x128 by default): ``states[t]`` is the mujoco state BEFORE ``actions[t]``, ``obs/*[t]``
  is observed AFTER ``actions[t]``; the first ``CAP_INDEX = 5`` recorded steps are dropped; images as
  rendered (OpenGL convention, upside-down); rewards/dones zero but the last 1.
- ``no_noops`` (OpenVLA-style regeneration, 256x256 by default): the observation is recorded BEFORE
  each action, and no-op actions (no motion, unchanged gripper) are skipped and not executed.
- A motion that stops at success (the scripted expert) is recorded for ``post_success_steps`` more
  steps once the goal is reached, as LIBERO's ``scripts/collect_demonstration.py`` records its human
  demos (10 steps, and the goal must hold through them: a lost goal resets the count). A demo cut at
  the first success step shows the release (of a bowl over the plate, say) for one or two frames only.

`record_task_file` is the one writer of ``<out>/<suite>/<task>_demo.hdf5``: it builds the env, asks
an episode function (the scripted motion of `demo_data`, the expert of `expert_data`) for one
attempt at a time and writes the kept ones, under a temporary name renamed when complete.
"""
from __future__ import annotations

import functools
import json
import logging
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import h5py
import numpy as np

from libero_eval import env as lenv
from policy.libero_mapping import noop_mask
from utils.atomic import atomic_path

log = logging.getLogger(__name__)

CAP_INDEX = 5  # create_dataset.py drops the first 5 recorded steps of every demo
FORMATS = ("raw", "no_noops")
DEFAULT_RESOLUTION = {"raw": 128, "no_noops": 256}
# create_dataset.py records with this camera order (it shows in env_args).
DATASET_CAMERAS = ("robot0_eye_in_hand", "agentview")

# LIBERO's collect_demonstration.py keeps recording this many steps after the goal is reached
# (``task_completion_hold_count``), the goal held throughout.
POST_SUCCESS_STEPS = 10

# rad, the std of Gaussian noise on each arm joint at a randomised reset: robosuite's "default"
# initialization noise. LIBERO's init states carry it (their arm joints scatter about init_qpos with
# a std of 0.016-0.021 rad per joint in libero_goal task 7 and libero_object task 1, so the gripper
# starts up to ~3 cm from its nominal pose), but LIBERO's ControlEnv passes None: without this every
# demo would start from the one arm pose that no benchmark init state has.
ROBOT_INIT_NOISE = 0.02

# A motion: called with each observation, returns a 7-d action; ``length`` is its step budget and
# ``stop_on_done`` (optional) ends the episode at the env's success (after ``post_success_steps``).
Rollout = Callable[..., "tuple[dict, Any]"]


class SuccessHold:
    """When an episode that stops at success ends: `steps` steps after the goal is first reached, the
    goal holding at each of them (LIBERO's ``task_completion_hold_count``; 0 = at the success step)."""

    def __init__(self, steps: int):
        if steps < 0:
            raise ValueError(f"post_success_steps {steps}: expected >= 0")
        self.steps = int(steps)
        self.left = -1  # -1: goal not (or no longer) reached

    def stop(self, done: bool) -> bool:
        """Feed one executed step's success flag; True when the episode ends after it."""
        if not done:
            self.left = -1
            return False
        self.left = self.steps if self.left < 0 else self.left - 1
        return self.left == 0


def is_noop(action: np.ndarray, prev_action: np.ndarray | None) -> bool:
    """The data code's no-op rule (`noop_mask`), so demos and ``filter_noops`` agree on what a no-op is.

    As in OpenVLA's regeneration, ``prev_action`` is the last *executed* action (None before any).
    """
    pair = [action] if prev_action is None else [prev_action, action]
    return bool(noop_mask(np.stack(pair))[-1])


# ------------------------------------------------------------------------------------------------
# Rollouts
# ------------------------------------------------------------------------------------------------
def obs_record(obs: dict, inner) -> dict:
    """One step's recorded observation keys, from a live observation."""
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


def start_episode(env, init_state: np.ndarray | None, render_last_settle: bool = True) -> dict:
    """Reset, jump to `init_state` (None: keep the placement env.reset() sampled), settle.

    Only the last settle step is rendered, and not even that one with ``render_last_settle=False``:
    no settle frame is ever stored (see `cameras_paused`)."""
    env.reset()
    if init_state is None:
        lenv.refresh_controller(env, lenv.GRIPPER_OPEN)
    else:
        with cameras_paused(env):  # set_init_state's observation is not stored either
            lenv.reset_to_state(env, init_state, lenv.GRIPPER_OPEN)
    if render_last_settle:
        with cameras_paused(env):
            lenv.settle(env, lenv.NUM_STEPS_WAIT - 1)
        return lenv.settle(env, 1)
    with cameras_paused(env):
        return lenv.settle(env)


@contextmanager
def cameras_paused(env) -> Iterator[None]:
    """Steps inside render nothing: the env's camera observables are disabled, and on exit
    re-enabled with their sampling timers as they were, so the frames after it are rendered at the
    same physics substep as if the cameras had never paused (rendering is ~90% of a recorded
    step's time on the CPU; physics does not depend on it). Observations inside lack the image keys.

    Made for steps whose frames are never stored (settle steps, the first ``CAP_INDEX`` steps of a
    raw demo); robosuite recreates its observables at a hard ``reset()``, so pause after one.
    """
    inner = lenv.inner_env(env)
    cams = [ob for ob in getattr(inner, "_observables", {}).values()
            if ob.modality == "image" and ob.is_enabled()]
    saved = [(ob._time_since_last_sample, ob._sampled, ob._current_delay) for ob in cams]
    for ob in cams:
        ob.set_enabled(False)
    try:
        yield
    finally:
        for ob, (elapsed, sampled, delay) in zip(cams, saved):
            ob.set_enabled(True)  # resets the timers and the last value...
            ob._time_since_last_sample, ob._sampled, ob._current_delay = elapsed, sampled, delay  # ...restored


def _stack(steps: list[dict], states: list, actions: list) -> dict:
    out = {k: np.stack([s[k] for s in steps]) for k in steps[0]}
    out["states"] = np.stack(states).astype(np.float64)
    out["actions"] = np.stack(actions).astype(np.float64)
    return out


def rollout_raw(env, init_state: np.ndarray | None, make_motion: Callable[[dict], Any],
                post_success_steps: int = POST_SUCCESS_STEPS) -> tuple[dict, Any]:
    """Record (state before, action, obs after) per step; drop the first CAP_INDEX steps (not
    rendered: `cameras_paused`).

    The motion runs for ``motion.length`` steps or, when it has ``stop_on_done`` set (the scripted
    expert), until the env's success has held for `post_success_steps` steps (`SuccessHold`).
    ``demo["success"]``: the goal holds after the last recorded step."""
    inner = lenv.inner_env(env)
    obs = start_episode(env, init_state, render_last_settle=False)
    motion = make_motion(obs)
    hold = SuccessHold(post_success_steps)
    states, actions, steps, done = [], [], [], False
    for t in range(motion.length):
        action = motion(obs)
        states.append(lenv.sim_state(env))
        with cameras_paused(env) if t < CAP_INDEX else nullcontext():
            obs, _, done, _ = env.step(action)
        actions.append(action)
        steps.append(obs_record(obs, inner) if t >= CAP_INDEX else None)
        if hold.stop(done) and getattr(motion, "stop_on_done", False):
            break
    demo = _stack(steps[CAP_INDEX:], states[CAP_INDEX:], actions[CAP_INDEX:])
    demo["success"] = bool(done)
    return demo, motion


def rollout_no_noops(env, init_state: np.ndarray | None, make_motion: Callable[[dict], Any],
                     post_success_steps: int = POST_SUCCESS_STEPS) -> tuple[dict, Any]:
    """Record (state before, obs before, action); no-op actions are skipped, not executed.

    Stops at success like `rollout_raw` when the motion has ``stop_on_done`` set; the hold counts
    executed steps, and a no-op while the goal holds ends the episode (the motion has stopped: a
    finished expert sends zero motion, which would never be executed)."""
    inner = lenv.inner_env(env)
    obs = start_episode(env, init_state)
    motion = make_motion(obs)
    hold = SuccessHold(post_success_steps)
    states, actions, steps, done, prev = [], [], [], False, None
    for _ in range(motion.length):
        action = motion(obs)
        if is_noop(action, prev):
            if done and getattr(motion, "stop_on_done", False):
                break
            continue
        states.append(lenv.sim_state(env))
        steps.append(obs_record(obs, inner))
        actions.append(action)
        obs, _, done, _ = env.step(action)
        prev = action
        if hold.stop(done) and getattr(motion, "stop_on_done", False):
            break
    demo = _stack(steps, states, actions)
    demo["success"] = bool(done)
    return demo, motion


ROLLOUTS: dict[str, Rollout] = {"raw": rollout_raw, "no_noops": rollout_no_noops}


# ------------------------------------------------------------------------------------------------
# Writing (layout of LIBERO's create_dataset.py)
# ------------------------------------------------------------------------------------------------
def file_attrs(env, suite, task_id: int, task, resolution: int, fmt: str, seed: int, args: dict,
               generator: str) -> dict:
    """``data`` group attributes, as create_dataset.py writes them, plus provenance."""
    import robosuite

    import libero.libero.envs.bddl_utils as bddl_utils

    bddl_abs = lenv.task_bddl_path(suite, task_id)
    bddl_rel = f"libero/libero/bddl_files/{task.problem_folder}/{task.bddl_file}"
    inner = lenv.inner_env(env)
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
        "generator": generator,
        "generator_seed": np.int64(seed),
        "generator_args": json.dumps(args, sort_keys=True),
    }


def stored_generator_args(path: str | Path) -> dict:
    """The ``generator_args`` a demo file was recorded with (`file_attrs`; {} for files without)."""
    with h5py.File(path, "r") as f:
        return json.loads(f["data"].attrs.get("generator_args", "{}"))


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


# ------------------------------------------------------------------------------------------------
# One task file
# ------------------------------------------------------------------------------------------------
@dataclass
class TaskRecording:
    """What an episode function gets: the task's env (built once per file) and how to roll out."""

    env: Any
    suite: Any  # the LIBERO benchmark object
    task_id: int
    task: Any
    init_states: np.ndarray
    rollout: Rollout  # rollout_raw or rollout_no_noops, by the file's format
    seed: int


@dataclass
class Episode:
    """One attempt: the demo to write (None: discarded), its extra ``demo_i`` attributes, and the
    simulated steps it took (settle steps included; for the timing log)."""

    demo: dict | None
    attrs: dict
    steps: int


EpisodeFn = Callable[[TaskRecording, int], Episode]


def resolve_resolution(fmt: str, resolution: int | None) -> int:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    return int(resolution or DEFAULT_RESOLUTION[fmt])


def record_task_file(
    suite: str,
    task_id: int,
    out: str | Path,
    episode: EpisodeFn,
    *,
    episodes: int,
    generator: str,
    extra_args: dict,
    max_attempts: int | None = None,
    fmt: str = "raw",
    resolution: int | None = None,
    seed: int = 0,
    count_attempts: bool = False,
    overwrite: bool = True,
    progress: bool = True,
    post_success_steps: int = POST_SUCCESS_STEPS,
    robot_init_noise: float,
) -> Path | None:
    """Write up to `episodes` demos of one task, calling ``episode(recording, attempt)`` for attempts
    0, 1, ... (at most `max_attempts`, default `episodes`), into ``<out>/<suite>/<task>_demo.hdf5``.

    `post_success_steps` is the rollouts' (for motions that stop at success). `robot_init_noise`
    (rad) scatters the arm's joints at each ``env.reset()``: `ROBOT_INIT_NOISE` for episodes that
    start from a randomised reset, 0 for episodes that jump to a benchmark init state (the arm pose
    is then the state's, and the noise would only move the controller's nullspace target, which is
    not in the state, away from the nominal pose LIBERO's evaluation has).
    ``generator`` and ``extra_args`` (with the common arguments) are stored as provenance;
    ``count_attempts`` also stores ``data.attrs["attempts"]``. Returns the path, or None when no
    attempt was kept (then no file is written).
    """
    resolution = resolve_resolution(fmt, resolution)
    if episodes < 1:
        raise ValueError("episodes must be >= 1")
    SuccessHold(post_success_steps)  # refuses a negative count before the env is built
    if not robot_init_noise >= 0:
        raise ValueError(f"robot_init_noise {robot_init_noise}: expected >= 0 (rad)")
    suite_obj = lenv.get_suite(suite)
    task = lenv.get_task(suite_obj, task_id)
    path = output_path(out, suite, task.name)
    if path.exists() and not overwrite:
        log.info("%s exists, skipping (overwrite=False: --no_overwrite)", path)
        return path
    init_states = lenv.get_task_init_states(suite_obj, task_id)
    env = lenv.make_env(suite_obj, task_id, resolution=resolution, seed=seed, camera_names=DATASET_CAMERAS,
                        ignore_done=True, reward_shaping=True,
                        initialization_noise={"magnitude": float(robot_init_noise), "type": "gaussian"})
    args = {"suite": suite, "task_id": task_id, "episodes": episodes, "format": fmt, "resolution": resolution,
            "seed": seed, "post_success_steps": int(post_success_steps), "robot_init_noise": float(robot_init_noise),
            **extra_args}
    rollout = functools.partial(ROLLOUTS[fmt], post_success_steps=post_success_steps)
    rec = TaskRecording(env, suite_obj, task_id, task, init_states, rollout, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(path) as tmp:
            with h5py.File(tmp, "w") as f:
                data = f.create_group("data")
                for k, v in file_attrs(env, suite_obj, task_id, task, resolution, fmt, seed, args, generator).items():
                    data.attrs[k] = v
                kept, attempts = _record_episodes(data, rec, episode, episodes, max_attempts or episodes, progress)
                if count_attempts:
                    data.attrs["attempts"] = np.int64(attempts)
            if kept == 0:
                log.warning("%s: no demo kept after %d attempts; no file written", path, attempts)
                tmp.unlink()  # atomic_path then writes nothing
                return None
        return path
    finally:
        lenv.close_env(env)


def _record_episodes(data: h5py.Group, rec: TaskRecording, episode: EpisodeFn, episodes: int, max_attempts: int,
                     progress: bool) -> tuple[int, int]:
    """The attempt loop of `record_task_file`; returns (demos kept, attempts made)."""
    model_xml = lenv.inner_env(rec.env).sim.model.get_xml()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=episodes, desc=f"{lenv.suite_name(rec.suite)}/{rec.task.name}", unit="demo", leave=False)
    kept, total, attempts, steps_run, t0 = 0, 0, 0, 0, time.perf_counter()
    while kept < episodes and attempts < max_attempts:
        ep = episode(rec, attempts)
        attempts += 1
        steps_run += ep.steps
        if ep.demo is None:
            continue
        total += write_demo(data.create_group(f"demo_{kept}"), ep.demo, model_xml, ep.attrs)
        kept += 1
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    data.attrs["num_demos"] = np.int64(kept)
    data.attrs["total"] = np.int64(total)
    dt = time.perf_counter() - t0
    log.info("%s/%s: %d/%d demos from %d attempts, %d samples, %.1f s (%.3f s per simulated step)",
             lenv.suite_name(rec.suite), rec.task.name, kept, episodes, attempts, total, dt, dt / max(steps_run, 1))
    if 0 < kept < episodes:
        log.warning("%s: only %d/%d demos kept after %d attempts", rec.task.name, kept, episodes, attempts)
    return kept, attempts
