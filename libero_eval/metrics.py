"""Evaluation records: the per-trial CSV (appended and fsynced as each trial ends, so a crash loses
nothing and a rerun resumes), and the per-task / per-suite summary derived from it.

    outs/metrics/<run>/trials.csv    one row per trial (TRIAL_FIELDS)
    outs/metrics/<run>/summary.csv   per task + a suite mean row (SUMMARY_FIELDS), rewritten atomically
"""
from __future__ import annotations

import csv
import fcntl
import io
import math
import os
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from utils.atomic import atomic_path, atomic_write_text

# What makes two trials comparable: a run (outs/metrics/<run>) holds one value of each; a rerun with
# other settings is refused (run.json), so resumed rows never mix settings.
RUN_SETTINGS = ("checkpoint", "exec_horizon", "max_steps", "num_steps_wait", "resolution", "dtype",
                "num_inference_steps", "instruction_source", "seed")
TRIAL_FIELDS = ("suite", "task_id", "task_name", "trial", "init_state_idx", "seed", "success", "steps",
                "wall_time_s", "mean_infer_ms", "exec_horizon", "max_steps", "num_steps_wait", "resolution",
                "dtype", "num_inference_steps", "instruction_source", "instruction", "checkpoint", "sim_stack",
                "video", "error")
SUMMARY_FIELDS = ("suite", "task_id", "task_name", "n", "successes", "success_rate", "errors",
                  "mean_steps", "mean_infer_ms")
REPLAY_FIELDS = ("file", "demo", "steps", "max_eef_dev_mm", "mean_eef_dev_mm", "env_success", "env_success_any",
                 "demo_success", "success_match", "video", "error")


def metrics_dir(out_root: str | Path, run: str) -> Path:
    return Path(out_root) / "metrics" / run


def videos_dir(out_root: str | Path, run: str) -> Path:
    return Path(out_root) / "eval_videos" / run


def read_rows(path: Path, fields: Sequence[str] = TRIAL_FIELDS) -> list[dict]:
    """Complete rows of a CSV (a row torn by a kill mid-write is dropped)."""
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        present = [k for k in fields if k in (reader.fieldnames or ())]  # files of older versions lack some
    return [r for r in rows if all(r.get(k) is not None for k in present)]


def check_columns(path: Path, fields: Sequence[str] = TRIAL_FIELDS) -> None:
    """Appending rows under another header would shift every column: refuse such a file."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    with open(path, newline="") as f:
        header = next(csv.reader(f), [])
    if header != list(fields):
        raise ValueError(f"{path} was written with other columns (an older version of this code); "
                         f"use another --run_name for new trials (--summarize_only still reads it)")


def append_row(path: Path, row: dict, fields: Sequence[str] = TRIAL_FIELDS) -> None:
    """Append one row and fsync it; a lock keeps concurrent evaluations of one run from interleaving."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(fields), lineterminator="\n")
    with open(path, "a+", newline="") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            f.seek(0, os.SEEK_END)
            if f.tell() == 0:
                w.writeheader()
            else:  # a row torn by a kill has no newline: start a fresh line
                f.seek(f.tell() - 1)
                if f.read(1) != "\n":
                    buf.write("\n")
            w.writerow({k: row.get(k, "") for k in fields})
            f.write(buf.getvalue())
            f.flush()
            os.fsync(f.fileno())
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def write_csv_atomic(path: Path, rows: Sequence[dict], fields: Sequence[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, fsync=True) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(fields), lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in fields})


def check_run_settings(mdir: Path, settings: dict) -> None:
    """Record ``settings`` (RUN_SETTINGS) in ``run.json`` on a run's first use; on resume, refuse other
    values (they would mix trials of different protocols in one success rate)."""
    import json

    path = mdir / "run.json"
    if path.is_file():
        recorded = json.loads(path.read_text())["settings"]
        diff = {k: (recorded.get(k), settings[k]) for k in RUN_SETTINGS if recorded.get(k) != settings[k]}
        if diff:
            listing = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in diff.items())
            raise ValueError(f"run {mdir.name!r} ({path}) was evaluated with other settings ({listing}); "
                                      f"use another --run_name (the launchers' default names include the settings)")
        return
    mdir.mkdir(parents=True, exist_ok=True)
    from libero_eval.versions import sim_versions

    atomic_write_text(path, json.dumps({"settings": {k: settings[k] for k in RUN_SETTINGS},
                                        "versions": sim_versions()}, indent=1))


def trial_key(row: dict) -> tuple[str, int, int]:
    return (str(row["suite"]), int(row["task_id"]), int(row["trial"]))


def latest_rows(rows: Sequence[dict]) -> list[dict]:
    """One row per trial: the last one written (a retried error is superseded by its rerun)."""
    by_key: dict = {}
    for r in rows:
        by_key[trial_key(r)] = r
    return list(by_key.values())


def _mean(values: Sequence[float]) -> float:
    vals = [v for v in values if not math.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")


def _f(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def summarize(rows: Sequence[dict]) -> list[dict]:
    """Per-task rows and a per-suite mean row (mean of the per-task success rates).

    A trial that raised (``error``: a degenerate predicted rotation, a simulator crash) counts as a
    failure, as OpenVLA-OFT and openpi count it; ``errors`` says how many there were.
    """
    rows = latest_rows(rows)
    tasks: dict[tuple[str, int], list[dict]] = {}
    for r in rows:
        tasks.setdefault((r["suite"], int(r["task_id"])), []).append(r)
    out: list[dict] = []
    for suite in sorted({s for s, _ in tasks}):
        task_rows, rates = [], []
        for (s, tid) in sorted(k for k in tasks if k[0] == suite):
            rs = tasks[(s, tid)]
            ok = [r for r in rs if not r.get("error")]
            succ = sum(int(r["success"]) for r in ok)
            rates.append(succ / len(rs))
            task_rows.append({
                "suite": s, "task_id": tid, "task_name": rs[0]["task_name"], "n": len(rs), "successes": succ,
                "success_rate": f"{succ / len(rs):.4f}",
                "errors": len(rs) - len(ok),
                "mean_steps": f"{_mean([_f(r['steps']) for r in ok]):.1f}" if ok else "",
                "mean_infer_ms": f"{_mean([_f(r['mean_infer_ms']) for r in ok]):.2f}" if ok else "",
            })
        suite_ok = [r for r in rows if r["suite"] == suite and not r.get("error")]
        out += task_rows
        out.append({
            "suite": suite, "task_id": "mean", "task_name": f"mean over {len(rates)} tasks",
            "n": sum(t["n"] for t in task_rows), "successes": sum(t["successes"] for t in task_rows),
            "success_rate": f"{np.mean(rates):.4f}" if rates else "",
            "errors": sum(t["errors"] for t in task_rows),
            "mean_steps": f"{_mean([_f(r['steps']) for r in suite_ok]):.1f}" if suite_ok else "",
            "mean_infer_ms": f"{_mean([_f(r['mean_infer_ms']) for r in suite_ok]):.2f}" if suite_ok else "",
        })
    return out


def write_summary(mdir: Path) -> list[dict]:
    summary = summarize(read_rows(mdir / "trials.csv"))
    write_csv_atomic(mdir / "summary.csv", summary, SUMMARY_FIELDS)
    return summary


def print_summary(summary: Sequence[dict], file=None) -> None:
    file = file or sys.stdout
    print(f"{'suite':<15} {'task':>5} {'n':>4} {'succ':>5} {'rate':>7} {'err':>4} {'infer ms':>9}  task name", file=file)
    for r in summary:
        print(f"{r['suite']:<15} {str(r['task_id']):>5} {r['n']:>4} {r['successes']:>5} {r['success_rate']:>7} "
              f"{r['errors']:>4} {r['mean_infer_ms']:>9}  {r['task_name']}", file=file)
