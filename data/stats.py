"""Per-suite statistics of the 128-d states and encoded actions (``configs/dataset_stat.json``).

RDT uses ``state_mean`` to replace masked-out states (condition dropout) and the statistics are
the natural place to check a mapping by eye (eef z of a table-top task, gripper in [0, 1]). They
are computed over exactly what the samples contain: one state and one first action per indexed
step. Slots outside the masks are reported as 0, like the official ``dataset_stat.json``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from configs.errors import output_file
from data.libero_hdf5 import LiberoDataError
from data.dataset import LiberoDataset
from policy.libero_mapping import action_mask, state_mask
from utils.atomic import atomic_write_text

STAT_KEYS = ("mean", "std", "min", "max")


def _summary(x: np.ndarray, mask: np.ndarray) -> dict[str, list[float]]:
    """(N, 128) rows -> mean/std/min/max (population std), zeroed where mask == 0."""
    out = {"mean": x.mean(0), "std": x.std(0), "min": x.min(0), "max": x.max(0)}
    return {k: (v * (mask > 0)).astype(np.float64).tolist() for k, v in out.items()}


def compute_suite_stats(dataset: LiberoDataset, suite: str) -> dict[str, Any]:
    """Statistics of one suite of ``dataset``: ``state_{mean,std,min,max}``, ``action_{...}``
    (each a 128-long list), ``num_samples``, ``action_encoding``."""
    states, actions = [], []
    for demo_idx in dataset.demos_of_suite(suite):
        s, a = dataset.lowdim_vectors(demo_idx)
        states.append(s)
        actions.append(a)
    if not states:
        raise ValueError(f"suite {suite!r} has no samples")
    s_all, a_all = np.concatenate(states), np.concatenate(actions)
    result: dict[str, Any] = {"num_samples": int(len(s_all)), "action_encoding": dataset.cfg.dataset.action_encoding,
                              "use_joint_state": dataset.cfg.dataset.use_joint_state}
    for k, v in _summary(s_all, state_mask(dataset.cfg.dataset.use_joint_state)).items():
        result[f"state_{k}"] = v
    for k, v in _summary(a_all, action_mask(dataset.cfg.dataset.action_encoding)).items():
        result[f"action_{k}"] = v
    return result


def merge_stats_file(path: str | Path, new: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Merge ``new`` suites into the json at ``path`` (other suites kept) and write it atomically."""
    path = output_file(path, "--out")
    data: dict[str, Any] = {}
    if path.is_file() and path.stat().st_size > 0:
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise LiberoDataError(path, f"existing stats file is not valid JSON ({e}); move it away first") from None
        if not isinstance(data, dict):
            raise LiberoDataError(path, f"existing stats file holds a {type(data).__name__}, not {{suite: stats}}; "
                                  f"move it away first")
    data.update(new)
    atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True))
    return data
