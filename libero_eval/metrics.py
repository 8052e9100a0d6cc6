"""Evaluation records: the per-trial CSV (appended and fsynced as each trial ends, so a crash loses
nothing and a rerun resumes), and the per-task / per-suite summary derived from it.

    outs/metrics/<run>/trials.csv    one row per trial (TRIAL_FIELDS)
    outs/metrics/<run>/summary.csv   per task + a suite mean row (SUMMARY_FIELDS), rewritten atomically

A run may hold several suites and several evaluation seeds (``eval_seed``: trial i of seed s uses env
and noise seed s + i). The summary gives per task and per suite the pooled success rate over all
rollouts with its 95% Wilson interval, the mean over seeds and the standard deviation across seeds,
and the mean over the suites the literature averages (spatial, object, goal, 10) when a run has them.
"""
from __future__ import annotations

import csv
import fcntl
import io
import math
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import numpy as np

from utils.atomic import atomic_path, atomic_write_text

# What makes two trials comparable: a run (outs/metrics/<run>) holds one value of each; a rerun with
# other settings is refused (run.json), so resumed rows never mix settings.
# (Suites and seeds are not settings: one run holds several; max_steps is the explicit budget or null,
# the suite's own budget, and every row records the budget it ran with.)
RUN_SETTINGS = ("checkpoint", "weights_sha256", "exec_horizon", "max_steps", "num_steps_wait", "resolution",
                "dtype", "num_inference_steps", "instruction_source")
TRIAL_FIELDS = ("suite", "task_id", "task_name", "trial", "init_state_idx", "eval_seed", "seed", "success", "steps",
                "wall_time_s", "mean_infer_ms", "exec_horizon", "max_steps", "num_steps_wait", "resolution",
                "dtype", "num_inference_steps", "instruction_source", "instruction", "checkpoint", "weights_sha256",
                "sim_stack", "video", "error")
SUMMARY_FIELDS = ("suite", "task_id", "task_name", "n", "successes", "success_rate", "ci95_low", "ci95_high",
                  "seeds", "seed_mean", "seed_std", "errors", "mean_steps", "mean_infer_ms")
# The four suites whose mean success the LIBERO literature reports (OpenVLA, openpi, RDT ports).
STANDARD_SUITES = ("libero_spatial", "libero_object", "libero_goal", "libero_10")
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


def check_run_settings(mdir: Path, settings: dict, record: bool = True) -> None:
    """Compare ``settings`` (RUN_SETTINGS) with the run's ``run.json``: other values are refused (they
    would mix trials of different protocols in one success rate). A run without one gets it written
    (``record``; the CLI records it only once the policy has loaded, ``record_run_settings``)."""
    import json

    path = mdir / "run.json"
    if path.is_file():
        try:
            recorded = json.loads(path.read_text())["settings"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: unreadable run settings ({exc!r}); use another --run_name") from None
        diff = {k: (recorded.get(k), settings[k]) for k in RUN_SETTINGS if recorded.get(k) != settings[k]}
        if diff:
            listing = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in diff.items())
            raise ValueError(f"run {mdir.name!r} ({path}) was evaluated with other settings ({listing}); "
                             f"use another --run_name, or leave it out: the default name carries the checkpoint's "
                             f"run and step and every setting given")
        return
    if record:
        record_run_settings(mdir, settings)


def record_run_settings(mdir: Path, settings: dict) -> None:
    """Write ``run.json`` (the settings every later row of the run must share, and the simulator stack)."""
    import json

    from libero_eval.versions import sim_versions, stack_status

    mdir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(mdir / "run.json", json.dumps({"settings": {k: settings[k] for k in RUN_SETTINGS},
                                                     "versions": sim_versions(), "stack": stack_status()}, indent=1))


class RunBusyError(ValueError):
    """Another process is evaluating the same trials of a run right now."""


@contextmanager
def run_lock(mdir: Path) -> Iterator[None]:
    """The run folder's lock: held while a process checks the run's settings, claims its tasks and
    (for a new run) records ``run.json``, so two evaluations started at once cannot both find an empty
    run and write rows of different settings into it. Released when the process dies."""
    mdir.mkdir(parents=True, exist_ok=True)
    with open(mdir / ".run.lock", "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def claim_task(mdir: Path, suite: str, task_id: int):
    """An open, locked file that says this process evaluates ``suite`` task ``task_id`` of the run
    (held until it is closed or the process ends). Another process holding it: ``RunBusyError``,
    since both would run (and write) the same trials."""
    folder = mdir / ".claims"
    folder.mkdir(parents=True, exist_ok=True)
    f = open(folder / f"{suite}_task{task_id}.lock", "a+")
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise RunBusyError(f"run {mdir.name!r}: {suite} task {task_id} is being evaluated by another process "
                           f"right now; wait for it to end (a rerun then resumes) or use another --run_name") from None
    return f


def eval_seed_of(row: dict) -> int:
    """The evaluation seed of a row (rows written before the column existed: env seed minus trial)."""
    if row.get("eval_seed") not in (None, ""):
        return int(row["eval_seed"])
    if row.get("seed") in (None, ""):  # a replay or hand-written row: no seed at all
        return -1
    return int(row["seed"]) - int(row["trial"])


def trial_key(row: dict) -> tuple[str, int, int, int]:
    return (str(row["suite"]), int(row["task_id"]), int(row["trial"]), eval_seed_of(row))


def latest_rows(rows: Sequence[dict]) -> list[dict]:
    """One row per trial: the last one written (a retried error is superseded by its rerun)."""
    by_key: dict = {}
    for r in rows:
        by_key[trial_key(r)] = r
    return list(by_key.values())


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval of a binomial rate (sound at 0/n and n/n, unlike the normal one)."""
    if n == 0:
        return float("nan"), float("nan")
    p = successes / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, center - half), min(1.0, center + half)


def _mean(values: Sequence[float]) -> float:
    vals = [v for v in values if not math.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")


def _f(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def _successes(rows: Sequence[dict]) -> int:
    """A trial that raised counts as a failure (as OpenVLA-OFT and openpi count it)."""
    return sum(int(r["success"]) for r in rows if not r.get("error"))


def _row(suite, task_id, task_name, rows: Sequence[dict], rate: float, seed_rates: dict) -> dict:
    """A summary row: ``rate`` (a task's pooled rate, a suite's mean of task rates) with the Wilson
    interval of the pooled rollouts and the spread of ``seed_rates`` {seed: rate} across seeds."""
    ok = [r for r in rows if not r.get("error")]
    lo, hi = wilson_interval(_successes(rows), len(rows))
    spread = list(seed_rates.values())
    return {
        "suite": suite, "task_id": task_id, "task_name": task_name, "n": len(rows), "successes": _successes(rows),
        "success_rate": f"{rate:.4f}", "ci95_low": f"{lo:.4f}", "ci95_high": f"{hi:.4f}",
        "seeds": len(spread), "seed_mean": f"{np.mean(spread):.4f}",
        "seed_std": f"{np.std(spread, ddof=1):.4f}" if len(spread) > 1 else "",
        "errors": len(rows) - len(ok),
        "mean_steps": f"{_mean([_f(r['steps']) for r in ok]):.1f}" if ok else "",
        "mean_infer_ms": f"{_mean([_f(r['mean_infer_ms']) for r in ok]):.2f}" if ok else "",
    }


def _by(rows: Sequence[dict], key) -> dict:
    out: dict = {}
    for r in rows:
        out.setdefault(key(r), []).append(r)
    return dict(sorted(out.items()))


def _task_rate_means(rows: Sequence[dict]) -> float:
    """Mean over tasks of each task's success rate (every task weighs the same)."""
    tasks = _by(rows, lambda r: int(r["task_id"]))
    return float(np.mean([_successes(t) / len(t) for t in tasks.values()]))


def summarize(rows: Sequence[dict]) -> list[dict]:
    """Per-task rows, a per-suite mean row (mean of the per-task rates) and, with several suites, a
    mean over suites (the standard four when all are there, else every suite of the run)."""
    rows = latest_rows(rows)
    out: list[dict] = []
    suite_rates: dict[str, float] = {}
    suite_seed_rates: dict[str, dict] = {}
    for suite, srows in _by(rows, lambda r: r["suite"]).items():
        tasks = _by(srows, lambda r: int(r["task_id"]))
        for tid, trows in tasks.items():
            seed_rates = {s: _successes(v) / len(v) for s, v in _by(trows, eval_seed_of).items()}
            out.append(_row(suite, tid, trows[0]["task_name"], trows, _successes(trows) / len(trows), seed_rates))
        suite_rates[suite] = _task_rate_means(srows)
        suite_seed_rates[suite] = {s: _task_rate_means(v) for s, v in _by(srows, eval_seed_of).items()}
        out.append(_row(suite, "mean", f"mean over {len(tasks)} tasks", srows, suite_rates[suite],
                        suite_seed_rates[suite]))
    if len(suite_rates) > 1:
        chosen = [s for s in STANDARD_SUITES if s in suite_rates]
        chosen = chosen if len(chosen) == len(STANDARD_SUITES) else list(suite_rates)
        seeds = set.intersection(*(set(suite_seed_rates[s]) for s in chosen))
        out.append(_row("all", "mean", f"mean over {len(chosen)} suites ({', '.join(chosen)})",
                        [r for r in rows if r["suite"] in chosen], float(np.mean([suite_rates[s] for s in chosen])),
                        {seed: float(np.mean([suite_seed_rates[s][seed] for s in chosen])) for seed in sorted(seeds)}))
    return out


def robustness_table(summary: Sequence[dict]) -> list[dict]:
    """One row per standard suite that has LIBERO-PRO perturbations in the run: its suite-mean success
    next to each perturbation's ({"suite", "standard", <perturbation>: "rate [lo, hi]", ...})."""
    from configs.suites import LIBERO_PRO_SUITES

    means = {r["suite"]: f"{r['success_rate']} [{r['ci95_low']}, {r['ci95_high']}]"
             for r in summary if r["task_id"] == "mean" and r["suite"] != "all"}
    rows = []
    for base in sorted({b for s, (b, _) in LIBERO_PRO_SUITES.items() if s in means}):
        row = {"suite": base, "standard": means.get(base, "-")}
        row.update({pert: means[s] for s, (b, pert) in LIBERO_PRO_SUITES.items() if b == base and s in means})
        rows.append(row)
    return rows


def print_robustness(summary: Sequence[dict], file=None) -> None:
    table = robustness_table(summary)
    if not table:
        return
    file = file or sys.stdout
    cols = list(dict.fromkeys(k for r in table for k in r if k != "suite"))
    print("robustness (suite mean success [95% CI]):", file=file)
    print(f"{'suite':<15} " + " ".join(f"{c:>24}" for c in cols), file=file)
    for r in table:
        print(f"{r['suite']:<15} " + " ".join(f"{r.get(c, '-'):>24}" for c in cols), file=file)


def write_summary(mdir: Path) -> list[dict]:
    summary = summarize(read_rows(mdir / "trials.csv"))
    write_csv_atomic(mdir / "summary.csv", summary, SUMMARY_FIELDS)
    return summary


def stack_notes(summary: Sequence[dict], versions: Optional[dict] = None) -> list[str]:
    """What a reader of this run's numbers must know about the simulator stack that ran it (`versions`,
    as run.json records them; default: the installed one); empty when verified."""
    from libero_eval.versions import premise_failures_in, stack_status

    status = stack_status(versions or None)
    notes = [status["warning"]] if status["warning"] else []
    pairs = sorted({(r["suite"], int(r["task_id"])) for r in summary if str(r["task_id"]).isdigit()})
    broken = premise_failures_in(status, pairs)
    if broken:
        notes.append("under this stack the starting scene of these tasks is not LIBERO's (an init-state premise fails "
                     "or objects settle elsewhere; python -m libero_eval.check_init_states): "
                     + ", ".join(f"{s} task {t}" for s, t in broken))
    return notes


def print_stack_status(summary: Sequence[dict], file=None) -> None:
    for note in stack_notes(summary, None):
        print(f"WARNING: {note}", file=file or sys.stdout)


def print_summary(summary: Sequence[dict], file=None) -> None:
    file = file or sys.stdout
    print(f"{'suite':<15} {'task':>5} {'n':>4} {'succ':>5} {'rate':>7} {'95% CI':>15} {'seeds':>5} {'std':>7} "
          f"{'err':>4} {'infer ms':>9}  task name", file=file)
    for r in summary:
        ci = f"[{r['ci95_low']}, {r['ci95_high']}]"
        print(f"{r['suite']:<15} {str(r['task_id']):>5} {r['n']:>4} {r['successes']:>5} {r['success_rate']:>7} "
              f"{ci:>15} {r['seeds']:>5} {r['seed_std'] or '-':>7} {r['errors']:>4} {r['mean_infer_ms']:>9}  "
              f"{r['task_name']}", file=file)
