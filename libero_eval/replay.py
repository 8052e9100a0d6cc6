"""Replaying a recorded LIBERO demo through the evaluation path (``--policy replay``): a check of the
whole pipeline without a model.

Each recorded action is encoded against the RECORDED pose before it and the simulator worker decodes
it against the LIVE pose, exactly as it does with a model's predictions; the live end-effector path
is then compared with the recorded one. ``libero_eval/action_tracking.py`` uses the same helpers.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from configs.suites import check_suite
from data import libero_hdf5 as lh5
from policy.libero_mapping import Pose, encode_actions, pose_from_env_obs
from libero_eval import env as lenv


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
