"""Expert datasets: the scripted expert (`libero_eval.demos.expert`) solving a task in the
simulator, recorded by `libero_eval.demos.recording.record_task_file` (`scripts/make_expert_dataset.py`
is the CLI).

- Every episode starts from a *randomised* reset: ``env.reset()`` samples new object placements
  from the task's BDDL regions (seeded per attempt from ``seed``); the benchmark's fixed init
  states (the test set) are never used. Each demo stores the distance of its object placement to
  the nearest benchmark init state (``min_init_state_dist``) so this can be checked. The arm starts
  with its joints scattered as in the benchmark init states (``robot_init_noise``, 0.02 rad:
  `recording.ROBOT_INIT_NOISE`), not from the one nominal pose.
- Episodes end ``post_success_steps`` (10) steps after the env's ``done`` (task success), the goal
  held through them, as LIBERO's own demos do (`recording.SuccessHold`); only successful episodes are
  kept, until ``episodes`` demos are collected (at most ``max_attempts``).

Deterministic given ``seed`` (same placements, same expert variations).
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np

from libero_eval import env as lenv
from libero_eval.demos.expert import FIRST_REVISION, check_supported, make_expert, plan_revision, resolve_task
from libero_eval.demos.recording import (POST_SUCCESS_STEPS, ROBOT_INIT_NOISE, Episode, TaskRecording, output_path,
                                        record_task_file, stored_generator_args)

log = logging.getLogger(__name__)

GENERATOR = "scripts/make_expert_dataset.py"


def reset_seed(seed: int, task_id: int, attempt: int) -> int:
    """The np.random seed given to ``env.seed`` before attempt `attempt`'s ``env.reset()``."""
    return int(np.random.SeedSequence([seed, task_id, attempt, 7919]).generate_state(1)[0])


def object_qpos(env, state: np.ndarray) -> np.ndarray:
    """The free-joint positions (xyz) of the task's movable objects in a flat mujoco state."""
    m = lenv.inner_env(env).sim.model
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


class RecordReset:
    """Passes everything to the LIBERO env and keeps the mujoco state right after each reset()."""

    def __init__(self, env):
        self._env = env
        self.env = lenv.inner_env(env)
        self.reset_state: np.ndarray | None = None

    def reset(self):
        obs = self._env.reset()
        self.reset_state = lenv.sim_state(self._env)
        return obs

    def __getattr__(self, name):
        return getattr(self._env, name)


def expert_episode(suite: str, task_name: str, min_dists: list[float]):
    """The episode function of `record_task_file`: attempt k from a randomised reset seeded by
    ``reset_seed(seed, task_id, k)``; failed attempts are dropped. Appends each kept demo's
    placement distance to `min_dists`."""

    def episode(rec: TaskRecording, attempt: int) -> Episode:
        env = rec.env
        recorder = RecordReset(env)
        env.seed(reset_seed(rec.seed, rec.task_id, attempt))  # np.random: env.reset()'s placement sampler
        rng = np.random.default_rng([rec.seed, rec.task_id, attempt])
        demo, expert = rec.rollout(recorder, None, lambda obs: make_expert(env, obs, suite, task_name, rng))
        steps = expert.t + lenv.NUM_STEPS_WAIT
        if not demo["success"]:
            log.info("attempt %d failed in phase %s; discarded", attempt, expert.phase)
            return Episode(None, {}, steps)
        dist = min_init_state_distance(env, recorder.reset_state, rec.init_states)
        min_dists.append(dist)
        attrs = {"reset_seed": np.int64(reset_seed(rec.seed, rec.task_id, attempt)), "attempt": np.int64(attempt),
                 "generator_seed": np.int64(rec.seed), "success": np.bool_(True),
                 "min_init_state_dist": np.float64(dist),
                 "expert_variation": json.dumps(asdict(expert.ctx.var)),
                 "expert_phases": json.dumps(expert.phase_log)}
        return Episode(demo, attrs, steps)

    return episode


def stored_plan_revision(path: str | Path) -> int:
    """The expert plan revision a demo file was recorded with (files from before revisions: the first)."""
    return int(stored_generator_args(path).get("plan_revision", FIRST_REVISION))


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
    post_success_steps: int = POST_SUCCESS_STEPS,
    robot_init_noise: float = ROBOT_INIT_NOISE,
) -> Path | None:
    """Record `episodes` successful expert demos of one task into ``<out>/<suite>/<task>_demo.hdf5``.

    `task`: an id, a task name or an instruction. Returns the path, or None when no episode succeeded.
    """
    max_attempts = int(max_attempts or 2 * episodes + 5)
    suite_obj = lenv.get_suite(suite)
    task_id = resolve_task(suite_obj, task)
    name = lenv.get_task(suite_obj, task_id).name
    check_supported(suite, name)
    revision = plan_revision(suite, name)
    existing = output_path(out, suite, name)
    stored = stored_plan_revision(existing) if not overwrite and existing.is_file() else revision
    if stored != revision:
        log.warning("%s was recorded by revision %d of the plan, which is now at %d: stale, kept as it is "
                    "(record it again without --no_overwrite)", existing, stored, revision)
    min_dists: list[float] = []
    extra = {"max_attempts": max_attempts, "reset": "random", "plan_revision": revision}
    path = record_task_file(
        suite, task_id, out, expert_episode(suite, name, min_dists), episodes=episodes, generator=GENERATOR,
        extra_args=extra, max_attempts=max_attempts, fmt=fmt,
        resolution=resolution, seed=seed, count_attempts=True, overwrite=overwrite, progress=progress,
        post_success_steps=post_success_steps, robot_init_noise=robot_init_noise)
    if min_dists:
        log.info("%s/%s: object placements vs benchmark init states: min distance %.4f m", suite, name,
                 min(min_dists))
    return path


def _init_worker(level: int) -> None:
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def make_task_files(suite: str, tasks: list[str | int], episodes: int, out: str | Path, workers: int = 1,
                    **kwargs) -> list[Path | None]:
    """`make_task_file` for each of `tasks`, in order; with ``workers`` > 1, that many tasks are
    recorded at once, one process each (spawned: a forked EGL context is not safe). Each file is the
    same as a serial run's (a task's demos depend on the seed only). Tasks are checked before any
    process starts, and an error in one task is raised here."""
    suite_obj = lenv.get_suite(suite)
    names = [lenv.get_task(suite_obj, resolve_task(suite_obj, t)).name for t in tasks]
    for name in names:
        check_supported(suite, name)
    if workers < 1:
        raise ValueError(f"workers {workers}: expected at least 1")
    workers = min(int(workers), len(names))
    if workers == 1:
        return [make_task_file(suite, name, episodes, out, **kwargs) for name in names]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    kwargs = {**kwargs, "progress": False}  # several bars would interleave on one terminal
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
                             initargs=(logging.getLogger().getEffectiveLevel(),)) as pool:
        futures = [pool.submit(make_task_file, suite, name, episodes, out, **kwargs) for name in names]
        return [f.result() for f in futures]
