"""Where a recorded demo's time goes, physics or camera rendering, measured side by side in one run.

- `step_time_split`: expert episodes from randomised resets whose steps alternate between cameras
  on and cameras paused (physics does not depend on rendering: `recording.cameras_paused`); the
  median step time of each is a step with and without the cameras.
- `time_recording`: seconds per demo of a task file with every frame rendered (the recorder before
  `cameras_paused` existed) and with only the stored frames rendered, in alternating rounds.
- `time_workers`: wall time of recording tasks one after another vs ``make_task_files(workers=N)``.

`scripts/bench_recording.py` is the command line.
"""
from __future__ import annotations

import tempfile
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from statistics import median
from typing import Iterator

import numpy as np

from libero_eval import env as lenv
from libero_eval.demos import recording
from libero_eval.demos.expert import make_expert, resolve_task
from libero_eval.demos.expert_data import make_task_file, make_task_files, reset_seed


def step_time_split(suite: str, task: str | int, episodes: int = 2, resolution: int = 128, seed: int = 0) -> dict:
    """Median ms of an expert step with the dataset's two cameras rendering, and with them paused."""
    suite_obj = lenv.get_suite(suite)
    task_id = resolve_task(suite_obj, task)
    name = lenv.get_task(suite_obj, task_id).name
    env = lenv.make_env(suite_obj, task_id, resolution=resolution, seed=seed,
                        camera_names=recording.DATASET_CAMERAS, ignore_done=True)
    times: dict[bool, list[float]] = {True: [], False: []}
    try:
        for ep in range(episodes):
            env.seed(reset_seed(seed, task_id, ep))
            obs = recording.start_episode(env, None)
            expert = make_expert(env, obs, suite, name, np.random.default_rng([seed, task_id, ep]))
            for t in range(expert.length):
                action, render = expert(obs), t % 2 == 0
                t0 = time.perf_counter()
                with nullcontext() if render else recording.cameras_paused(env):
                    obs, _, done, _ = env.step(action)
                times[render].append(time.perf_counter() - t0)
                if done:
                    break
    finally:
        lenv.close_env(env)
    step, physics = 1e3 * median(times[True]), 1e3 * median(times[False])
    return {"step_ms": step, "physics_ms": physics, "render_ms": step - physics,
            "render_share": (step - physics) / step, "steps": len(times[True]) + len(times[False])}


@contextmanager
def all_frames_rendered() -> Iterator[None]:
    """The recorder as it was before `cameras_paused`: every simulated step renders both cameras."""
    real = recording.cameras_paused
    recording.cameras_paused = lambda env: nullcontext()
    try:
        yield
    finally:
        recording.cameras_paused = real


def time_recording(suite: str, task: str | int, episodes: int = 2, rounds: int = 2, seed: int = 0) -> dict:
    """Seconds per demo writing `episodes` raw demos, all frames rendered vs only the stored ones
    (same demos: the files are identical), `rounds` alternating rounds each; medians."""
    secs: dict[str, list[float]] = {"all_frames": [], "stored_frames": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for mode in ("all_frames", "stored_frames"):
                t0 = time.perf_counter()
                with all_frames_rendered() if mode == "all_frames" else nullcontext():
                    make_task_file(suite, task, episodes, Path(tmp) / f"{mode}{r}", seed=seed, progress=False)
                secs[mode].append((time.perf_counter() - t0) / episodes)
    return {mode: median(v) for mode, v in secs.items()}


def time_workers(suite: str, tasks: list[str | int], episodes: int = 2, workers: int = 2, seed: int = 0) -> dict:
    """Wall seconds recording `tasks` one after another, and `workers` at a time."""
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (1, workers):
            t0 = time.perf_counter()
            make_task_files(suite, tasks, episodes, Path(tmp) / f"w{n}", workers=n, seed=seed, progress=False)
            out[n] = time.perf_counter() - t0
    return out
