"""Closed-loop check of the action encoding in the LIBERO simulator.

For each demo of a LIBERO HDF5 file, start the simulator at ``states[0]`` (controller refreshed,
see `libero_eval.env.reset_to_state`) and drive the arm two ways, measuring the largest distance
between the live end-effector position and the recorded path (``obs/ee_pos`` after each action):

(a) open loop: replay the recorded 7-d actions;
(b) closed loop: encode the recorded actions as ``abs_goal`` targets (the absolute OSC goal pose,
    computed from the pose recorded before each action, `policy.libero_mapping.encode_actions`), then
    at every step decode the target against the LIVE pose (`decode_actions`, as evaluation does)
    and execute that.

(b) is what a policy trained on ``abs_goal`` targets executes; it must track the recorded path at
least as well as (a), i.e. the encoding loses nothing at execution time.

``python -m scripts.check_action_tracking`` is its command line.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from data import libero_hdf5 as lh5
from policy.libero_mapping import decode_actions, encode_actions, pose_from_env_obs
from libero_eval import env as lenv
from libero_eval.replay import max_dev_mm, pre_action_poses, recorded_after, task_of_file

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURE = REPO_ROOT / "tests" / "fixtures" / "libero_format" / "put_the_bowl_on_the_stove_demo.hdf5"


@dataclass
class TrackingResult:
    file: str
    demo: str
    steps: int
    open_loop_mm: float  # max eef deviation from the recorded path, replaying the 7-d actions
    closed_loop_mm: float  # same, executing abs_goal targets decoded against the live pose


def track_demo(env, states: np.ndarray, demo: lh5.DemoLowDim, layout: str, scale) -> tuple[float, float, int]:
    """(open-loop mm, closed-loop mm, steps) for one demo (env already built for its task)."""
    ref = recorded_after(demo.ee_pos, layout)

    env.reset()
    obs = lenv.reset_to_state(env, states[0], lenv.GRIPPER_OPEN)
    start = pose_from_env_obs(obs)
    live = []
    for a in demo.actions:
        obs, _, _, _ = env.step(a)
        live.append(np.asarray(obs["robot0_eef_pos"]))
    open_mm = max_dev_mm(live, ref)

    goals = encode_actions(demo.actions, pre_action_poses(demo.ee_pos, demo.ee_ori, start, layout), "abs_goal", scale)
    env.reset()
    obs = lenv.reset_to_state(env, states[0], lenv.GRIPPER_OPEN)
    live = []
    for goal in goals:
        a = decode_actions(goal, pose_from_env_obs(obs), "abs_goal", scale, binarize_gripper=True, clip=True)
        obs, _, _, _ = env.step(a)
        live.append(np.asarray(obs["robot0_eef_pos"]))
    return open_mm, max_dev_mm(live, ref), len(goals)


def check_file(path: str | Path, max_demos: int | None = None) -> list[TrackingResult]:
    """Tracking results for the demos of one file (one env, no cameras: physics only)."""
    path = Path(path)
    results = []
    with lh5.open_file(path) as f:
        layout = lh5.detect_layout(f, path)
        scale = lh5.read_osc_scale(f, path)
        suite, task_id = task_of_file(f, path)
        demos = lh5.demo_keys(f, path)[: max_demos or None]
        env = lenv.make_env(suite, task_id, seed=0, use_camera_obs=False)
        try:
            for demo in demos:
                low = lh5.read_demo_lowdim(f, path, demo)
                states = f[f"data/{demo}/states"][()]
                n_env = len(lenv.sim_state(env))
                if states.shape[1] != n_env:
                    raise lh5.LiberoDataError(path, f"state size {states.shape[1]} != simulator's {n_env}",
                                              key=f"data/{demo}/states")
                open_mm, closed_mm, n = track_demo(env, states, low, layout, scale)
                results.append(TrackingResult(str(path), demo, n, open_mm, closed_mm))
                log.info("%s %s: open loop %.2f mm, closed loop (abs_goal) %.2f mm over %d steps",
                         path.name, demo, open_mm, closed_mm, n)
        finally:
            lenv.close_env(env)
    return results


def print_table(results: Sequence[TrackingResult]) -> None:
    print(f"{'file':<48} {'demo':<8} {'steps':>5} {'open-loop mm':>13} {'abs_goal closed-loop mm':>24}")
    for r in results:
        print(f"{Path(r.file).name[:48]:<48} {r.demo:<8} {r.steps:>5} {r.open_loop_mm:>13.2f} {r.closed_loop_mm:>24.2f}")
    if results:
        print(f"{'MAX':<48} {'':<8} {'':>5} {max(r.open_loop_mm for r in results):>13.2f} "
              f"{max(r.closed_loop_mm for r in results):>24.2f}")
