"""Make LIBERO expert datasets: the scripted expert (`scripts/scripted_expert.py`) solving tasks in
the simulator, recorded in LIBERO's HDF5 layout by `scripts/make_demo_dataset.py`'s writer.

- Every episode starts from a *randomised* reset: ``env.reset()`` samples new object placements
  from the task's BDDL regions (seeded per attempt from ``--seed``); the benchmark's fixed init
  states (the test set) are never used. Each demo stores the distance of its object placement to
  the nearest benchmark init state (``min_init_state_dist``) so this can be checked.
- Episodes end at the env's ``done`` (task success), as LIBERO's own demos do; only successful
  episodes are kept, until ``--episodes`` demos are collected (at most ``--max_attempts``).
- ``--format raw`` (128 px, LIBERO create_dataset layout, obs after action, cap_index 5) or
  ``no_noops`` (256 px, OpenVLA regeneration layout, obs before action); see make_demo_dataset.

Usage::

    python -m scripts.make_expert_dataset --suite libero_goal --tasks put_the_bowl_on_the_stove 8 \
        --episodes 30 --format raw --out data/datasets/expert
    # -> data/datasets/expert/libero_goal/put_the_bowl_on_the_stove_demo.hdf5, ...

Deterministic given ``--seed`` (same placements, same expert variations). Each file is written
under a temporary name and renamed when complete.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np

from configs.errors import exit_cli
from configs.suites import LIBERO_SUITES, check_suite
from libero_eval import env as lenv
from scripts import make_demo_dataset as mdd
from scripts import scripted_expert as se
from utils.atomic import atomic_path

log = logging.getLogger("make_expert_dataset")

GENERATOR = "scripts/make_expert_dataset.py"


def reset_seed(seed: int, task_id: int, attempt: int) -> int:
    """The np.random seed given to ``env.seed`` before attempt `attempt`'s ``env.reset()``."""
    return int(np.random.SeedSequence([seed, task_id, attempt, 7919]).generate_state(1)[0])


def object_qpos(env, state: np.ndarray) -> np.ndarray:
    """The free-joint positions (xyz) of the task's movable objects in a flat mujoco state."""
    inner = lenv._inner(env)
    m = inner.sim.model
    idx = []
    for j in range(m.njnt):
        if m.jnt_type[j] == 0:  # free joint: qpos = xyz + quat
            a = int(m.jnt_qposadr[j])
            idx.extend([a, a + 1, a + 2])
    qpos = np.asarray(state, np.float64)[1:1 + m.nq]  # flat state = [time, qpos, qvel]
    return qpos[idx]


def min_init_state_distance(env, state: np.ndarray, init_states: np.ndarray) -> float:
    """Max-norm distance (m) of the objects' positions to the nearest benchmark init state.

    Compare a state taken right after ``env.reset()`` (before the settle steps): the benchmark
    init states are such freshly sampled placements (objects still a little above their support).
    """
    ours = object_qpos(env, state)
    return float(min(np.abs(object_qpos(env, s) - ours).max() for s in init_states))


class _RecordReset:
    """Passes everything to the LIBERO env and keeps the mujoco state right after each reset()."""

    def __init__(self, env):
        self._env = env
        self.env = lenv._inner(env)
        self.reset_state: np.ndarray | None = None

    def reset(self):
        obs = self._env.reset()
        self.reset_state = lenv.sim_state(self._env)
        return obs

    def __getattr__(self, name):
        return getattr(self._env, name)


def make_task_file(
    suite: str,
    task: str | int,
    episodes: int,
    out: str | Path,
    fmt: str = "raw",
    resolution: int | None = None,
    seed: int = 0,
    max_attempts: int | None = None,
    overwrite: bool = True,
    progress: bool = True,
) -> Path | None:
    """Record `episodes` successful expert demos of one task into ``<out>/<suite>/<task>_demo.hdf5``.

    Returns the path, or None when no episode succeeded.
    """
    if fmt not in mdd.FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {mdd.FORMATS}")
    if episodes < 1:
        raise ValueError("episodes must be >= 1")
    resolution = int(resolution or mdd.DEFAULT_RESOLUTION[fmt])
    max_attempts = int(max_attempts or 2 * episodes + 5)
    suite_obj = lenv.get_suite(suite)
    task_id = se.resolve_task(suite_obj, task)
    task_obj = lenv.get_task(suite_obj, task_id)
    if (suite, task_obj.name) not in se.TASKS:
        raise ValueError(f"no scripted expert for {suite}/{task_obj.name}; supported: {se.supported_tasks(suite)}")
    path = mdd.output_path(out, suite, task_obj.name)
    if path.exists() and not overwrite:
        log.info("%s exists, skipping", path)
        return path
    init_states = lenv.get_task_init_states(suite_obj, task_id)
    env = lenv.make_env(suite_obj, task_id, resolution=resolution, seed=seed, camera_names=mdd.DATASET_CAMERAS,
                        ignore_done=True, reward_shaping=True)
    args = {"suite": suite, "task_id": task_id, "episodes": episodes, "format": fmt, "resolution": resolution,
            "seed": seed, "max_attempts": max_attempts, "reset": "random"}
    rollout = mdd.rollout_raw if fmt == "raw" else mdd.rollout_no_noops
    recorder = _RecordReset(env)
    path.parent.mkdir(parents=True, exist_ok=True)
    kept, total, attempts, steps_run, t0 = 0, 0, 0, 0, time.perf_counter()
    min_dists = []
    try:
        with atomic_path(path) as tmp:
            with h5py.File(tmp, "w") as f:
                data = f.create_group("data")
                attrs = mdd.file_attrs(env, suite_obj, task_id, task_obj, resolution, fmt, seed, args)
                attrs["generator"] = GENERATOR
                for k, v in attrs.items():
                    data.attrs[k] = v
                model_xml = lenv._inner(env).sim.model.get_xml()
                bar = None
                if progress:
                    from tqdm import tqdm

                    bar = tqdm(total=episodes, desc=f"{suite}/{task_obj.name}", unit="demo", leave=False)
                while kept < episodes and attempts < max_attempts:
                    attempt = attempts
                    attempts += 1
                    env.seed(reset_seed(seed, task_id, attempt))  # np.random: env.reset()'s placement sampler
                    rng = np.random.default_rng([seed, task_id, attempt])
                    made = {}

                    def make_motion(obs, _rng=rng, _made=made):
                        _made["expert"] = se.make_expert(env, obs, suite, task_obj.name, _rng)
                        return _made["expert"]

                    demo, expert = rollout(recorder, None, make_motion)
                    steps_run += expert.t + lenv.NUM_STEPS_WAIT
                    if not demo["success"]:
                        log.info("attempt %d failed in phase %s; discarded", attempt, expert.phase)
                        continue
                    dist = min_init_state_distance(env, recorder.reset_state, init_states)
                    min_dists.append(dist)
                    extra = {"reset_seed": np.int64(reset_seed(seed, task_id, attempt)), "attempt": np.int64(attempt),
                             "generator_seed": np.int64(seed), "success": np.bool_(True),
                             "min_init_state_dist": np.float64(dist),
                             "expert_variation": json.dumps(asdict(expert.ctx.var)),
                             "expert_phases": json.dumps(expert.phase_log)}
                    total += mdd.write_demo(data.create_group(f"demo_{kept}"), demo, model_xml, extra)
                    kept += 1
                    if bar is not None:
                        bar.update(1)
                if bar is not None:
                    bar.close()
                data.attrs["num_demos"] = np.int64(kept)
                data.attrs["total"] = np.int64(total)
                data.attrs["attempts"] = np.int64(attempts)
            dt = time.perf_counter() - t0
            log.info("%s: %d demos from %d attempts, %d samples, %.1f s (%.1f s per attempt, %.3f s per step); "
                     "object placements vs benchmark init states: min distance %.4f m", path, kept, attempts, total,
                     dt, dt / max(attempts, 1), dt / max(steps_run, 1), min(min_dists) if min_dists else float("nan"))
            if kept < episodes:
                log.warning("%s: only %d/%d successful demos after %d attempts", path, kept, episodes, attempts)
            if kept == 0:
                tmp.unlink()  # atomic_path then writes nothing
                return None
        return path
    finally:
        lenv.close_env(env)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", default="libero_goal", help=f"one of {', '.join(LIBERO_SUITES)}")
    ap.add_argument("--tasks", nargs="+", default=["all"],
                    help="task ids or names (the suite's task name or its instruction); 'all' = every task the "
                         "expert supports in the suite")
    ap.add_argument("--episodes", type=int, default=30, help="successful demos per task")
    ap.add_argument("--max_attempts", type=int, default=None, help="episodes tried per task (default 2*episodes+5)")
    ap.add_argument("--out", default="data/datasets/expert", help="files go to <out>/<suite>/<task>_demo.hdf5")
    ap.add_argument("--format", choices=mdd.FORMATS, default="raw")
    ap.add_argument("--resolution", type=int, default=None, help="camera size (default 128 raw, 256 no_noops)")
    ap.add_argument("--seed", type=int, default=0, help="placement and expert-variation seed")
    ap.add_argument("--no_overwrite", action="store_true", help="skip tasks whose file already exists")
    ap.add_argument("--no_progress", action="store_true")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        lenv.check_render_backend()
        check_suite(args.suite, "--suite")
        tasks = se.supported_tasks(args.suite) if args.tasks == ["all"] else args.tasks
        paths = [make_task_file(args.suite, t, args.episodes, args.out, fmt=args.format, resolution=args.resolution,
                                seed=args.seed, max_attempts=args.max_attempts, overwrite=not args.no_overwrite,
                                progress=not args.no_progress) for t in tasks]
    except (ValueError, lenv.RenderBackendError) as exc:
        log.error("%s", exc)
        return 2
    for p in paths:
        if p is not None:
            print(p)
    return 0 if all(p is not None for p in paths) else 1


if __name__ == "__main__":
    exit_cli(main)
