"""Replaying a recorded LIBERO demo through the evaluation path (``--policy replay``): a check of the
whole pipeline without a model.

Each recorded action is encoded against the RECORDED pose before it and the simulator worker decodes
it against the LIVE pose, exactly as it does with a model's predictions; the live end-effector path
is then compared with the recorded one. ``libero_eval/action_tracking.py`` uses the same helpers;
``replay`` is the mode itself, which the CLI (``libero_eval.eval_rdt_libero``) dispatches to.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from configs.errors import output_dir, require_file
from configs.schema import EvalConfig
from configs.suites import check_suite
from data import libero_hdf5 as lh5
from policy.libero_mapping import Pose, encode_actions, pose_from_env_obs
from libero_eval import env as lenv
from libero_eval.metrics import REPLAY_FIELDS, metrics_dir, videos_dir, write_csv_atomic
from libero_eval.runner import Active, Job, run_jobs
from libero_eval.settings import EvalInputError, EvalRequest, check_render


def task_of_file(f, path) -> tuple[str, int]:
    """(suite, task id) from ``data.attrs['bddl_file_name']`` (``.../bddl_files/<suite>/<task>.bddl``)."""
    bddl = f["data"].attrs.get("bddl_file_name")
    if bddl is None:
        raise lh5.LiberoDataError(path, "missing attribute", key="data.attrs['bddl_file_name']")
    bddl = Path(bddl.decode() if isinstance(bddl, bytes) else str(bddl))
    suite_name, task_name = bddl.parent.name, bddl.stem
    check_suite(suite_name, f"{path}: data.attrs['bddl_file_name'] {str(bddl)!r}")
    suite = lenv.get_suite(suite_name)
    names = suite.get_task_names()
    if task_name not in names:
        raise lh5.LiberoDataError(path, f"task {task_name!r} not in suite {suite_name}")
    return suite_name, names.index(task_name)


def pre_action_poses(ee_pos, ee_ori, start: Pose, layout: str) -> Pose:
    """Pose before each action: raw -> (start, obs[0..T-2]); no_noops -> obs[0..T-1]."""
    if layout == "no_noops":
        return Pose(ee_pos, ee_ori)
    return Pose(np.concatenate([start.pos[None], ee_pos[:-1]]), np.concatenate([start.axis_angle[None], ee_ori[:-1]]))


def recorded_after(ee_pos, layout: str) -> np.ndarray:
    """Recorded eef position after each action (no_noops: obs[t+1]; the last one is unknown -> NaN)."""
    if layout == "raw":
        return ee_pos
    out = np.full_like(ee_pos, np.nan)
    out[:-1] = ee_pos[1:]
    return out


def max_dev_mm(live: Sequence[np.ndarray], ref: np.ndarray) -> float:
    """Largest distance (mm) between live and recorded eef positions (NaN rows ignored)."""
    d = np.linalg.norm(np.asarray(live) - ref, axis=-1)
    return float(np.nanmax(d) * 1000.0)


@dataclass
class ReplayDemo:
    file: str
    key: str
    layout: str
    scale: Any
    actions: np.ndarray
    ee_pos: np.ndarray
    ee_ori: np.ndarray
    expected_success: bool


def load_replay_demos(path: Path, num: Optional[int]) -> tuple[str, int, list[ReplayDemo], dict]:
    """(suite, task id, demos, {demo key: states[0]}) of a LIBERO HDF5 file."""
    demos, starts = [], {}
    with lh5.open_file(path) as f:
        layout = lh5.detect_layout(f, path)
        scale = lh5.read_osc_scale(f, path)
        suite, task_id = task_of_file(f, path)
        for key in lh5.demo_keys(f, path)[: num or None]:
            low = lh5.read_demo_lowdim(f, path, key)
            grp = f[f"data/{key}"]
            if "success" in grp.attrs:
                expected = bool(grp.attrs["success"])
            else:  # LIBERO's own files: dones[-1] = 1 marks the (successful) end of a human demo
                expected = bool(np.asarray(grp["dones"][()])[-1]) if "dones" in grp else False
            demos.append(ReplayDemo(str(path), key, layout, scale, low.actions, low.ee_pos, low.ee_ori, expected))
            starts[key] = np.asarray(grp["states"][0], np.float64)
    return suite, task_id, demos, starts


class ReplayPlanner:
    """Chunks from a recorded demo (the planner interface of the rollout loop: begin / after_exec /
    plan): each action encoded against the recorded pose before it, decoded live by the worker."""

    def __init__(self, encoding: str):
        self.encoding = encoding
        self.encoded: dict[int, np.ndarray] = {}
        self.scale = None

    def begin(self, slot: int, act) -> None:
        d: ReplayDemo = act.job.demo
        self.scale = d.scale
        poses = pre_action_poses(d.ee_pos, d.ee_ori, pose_from_env_obs(act.obs), d.layout)
        self.encoded[slot] = encode_actions(d.actions, poses, self.encoding, d.scale)

    def after_exec(self, slot: int, prev_obs: dict) -> None:
        pass

    def plan(self, slots: Sequence[int], acts: Sequence) -> list[np.ndarray]:
        return [self.encoded[s][a.steps:] for s, a in zip(slots, acts)]


# ------------------------------------------------------------------------------ the --policy replay mode
def replay_row(job: Job, act: Optional[Active], video: str, error: str) -> dict:
    """One replay.csv row: the live end-effector path against the recorded one, and the env's success
    against the demo's."""
    d: ReplayDemo = job.demo
    row = {"file": d.file, "demo": d.key, "steps": act.steps if act else 0, "video": video, "error": error,
           "demo_success": int(d.expected_success)}
    if act is not None and act.eef and not error:
        ref = recorded_after(d.ee_pos, d.layout)[: len(act.eef)]
        dev = np.linalg.norm(np.asarray(act.eef) - ref, axis=-1) * 1000.0
        env_success = bool(act.dones[-1]) if act.dones else False
        row.update(max_eef_dev_mm=f"{max_dev_mm(act.eef, ref):.3f}", mean_eef_dev_mm=f"{np.nanmean(dev):.3f}",
                   env_success=int(env_success), env_success_any=int(any(act.dones)),
                   success_match=int(env_success == d.expected_success))
    return row


def print_replay(rows: Sequence[dict]) -> None:
    print(f"{'demo':<8} {'steps':>5} {'max dev mm':>10} {'mean dev mm':>11} {'env succ':>8} {'demo succ':>9} {'match':>5}")
    for r in rows:
        print(f"{r['demo']:<8} {r['steps']:>5} {r.get('max_eef_dev_mm', ''):>10} {r.get('mean_eef_dev_mm', ''):>11} "
              f"{str(r.get('env_success', '')):>8} {r['demo_success']:>9} {str(r.get('success_match', '')):>5}"
              f"{'  ERROR ' + r['error'] if r['error'] else ''}")


def replay(request: EvalRequest, ecfg: EvalConfig) -> int:
    """``--policy replay``: execute ``request.demo_file``'s recorded actions (the first ``--num_trials``
    demos, default all) through encode -> simulator decode; one replay.csv row per demo. 1 if a
    simulator failed."""
    if not request.demo_file:
        raise EvalInputError("--policy replay needs --demo_file")
    path = require_file(request.demo_file, "--demo_file")
    try:
        suite, task_id, demos, starts = load_replay_demos(path, request.eval_overrides.get("num_trials"))
    except (lh5.LiberoDataError, ValueError) as exc:
        raise EvalInputError(str(exc)) from None
    check_render()
    output_dir(request.out_root, "--out_root")
    run = request.run_name or f"replay_{path.stem}"
    mdir, vdir = metrics_dir(request.out_root, run), videos_dir(request.out_root, run)
    task_name = lenv.get_task(suite, task_id).name
    with lh5.open_file(path) as f:
        resolution = int(f[f"data/{demos[0].key}/{lh5.IMAGE_KEYS[0]}"].shape[1])
    # Seeded like evaluation trials: LIBERO places the fixtures (stove, cabinet) at random at every reset,
    # so an unseeded replay depends on what its simulator ran before.
    jobs = [Job(suite=suite, task_id=task_id, task_name=task_name, trial=i, init_state_idx=-1, seed=ecfg.seed + i,
                instruction="", init_state=starts[d.key], max_steps=len(d.actions), settle_steps=0,
                stop_on_done=False, video_stem=f"replay_{suite}_task{task_id}_{d.key}", demo=d)
            for i, d in enumerate(demos)]
    rows: list[dict] = []
    run_jobs(jobs, ReplayPlanner(request.replay_encoding), ecfg.num_envs, ecfg.exec_horizon, ecfg.video, vdir,
             lambda *result: rows.append(replay_row(*result)), ecfg.step_timeout, request.progress, resolution,
             slots=ecfg.slots)
    rows.sort(key=lambda r: int(r["demo"].rsplit("_", 1)[-1]))
    write_csv_atomic(mdir / "replay.csv", rows, REPLAY_FIELDS)
    print_replay(rows)
    print(f"replay: {mdir / 'replay.csv'}")
    return 1 if any(r["error"] for r in rows) else 0
