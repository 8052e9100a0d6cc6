"""A report a person looks at, rebuilt from a run's ``trials.csv`` alone (so a crashed or partial run
can be reported too): ``outs/metrics/<run>/report.md`` and ``report.png``.

    python -m libero_eval.report RUN [--out_root outs] [--wandb [PROJECT]]

The figure has three panels: per-task success with 95% Wilson intervals, the share of trials that
had succeeded by each policy step (successful trials end on ``done``, so this is their length
distribution), and the distribution of the per-chunk inference latency. The markdown has the
summary table (pooled rate, interval, seeds and their spread), the run's settings and simulator
versions (``run.json``) and links to the failure videos.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from configs.errors import UserError, exit_cli
from libero_eval.metrics import latest_rows, metrics_dir, read_rows, robustness_table, stack_notes, summarize
from utils.atomic import atomic_path, atomic_write_text


class ReportError(UserError, ValueError):
    pass


def _num(rows: Sequence[dict], key: str) -> np.ndarray:
    out = []
    for r in rows:
        try:
            out.append(float(r[key]))
        except (KeyError, TypeError, ValueError):
            pass
    return np.asarray(out, float)


def plot(summary: Sequence[dict], rows: Sequence[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [s for s in summary if s["task_id"] != "mean"]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5), gridspec_kw={"width_ratios": [2, 1.2, 1]})
    ax = axes[0]
    rate = np.array([float(s["success_rate"]) for s in tasks])
    lo = np.array([float(s["ci95_low"]) for s in tasks])
    hi = np.array([float(s["ci95_high"]) for s in tasks])
    x = np.arange(len(tasks))
    ax.bar(x, rate, color="tab:blue", alpha=0.8)
    ax.errorbar(x, rate, yerr=[rate - lo, hi - rate], fmt="none", ecolor="black", capsize=3)
    ax.set_xticks(x, [f"{s['suite'].replace('libero_', '')}/{s['task_id']}" for s in tasks], rotation=60,
                  ha="right", fontsize=7)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("success rate (95% Wilson interval)")
    ax.set_title("success per task")

    ax = axes[1]
    for suite in sorted({r["suite"] for r in rows}):
        srows = [r for r in rows if r["suite"] == suite]
        won = np.sort(_num([r for r in srows if str(r["success"]) == "1" and not r.get("error")], "steps"))
        if not len(srows):
            continue
        budget = int(max(_num(srows, "max_steps").max(initial=0), won.max(initial=0), 1))
        steps = np.arange(budget + 1)
        ax.plot(steps, np.searchsorted(won, steps, side="right") / len(srows), label=suite)
    ax.set_xlabel("policy step")
    ax.set_ylabel("share of trials succeeded")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7)
    ax.set_title("success vs steps")

    ax = axes[2]
    lat = _num(rows, "mean_infer_ms")
    if len(lat):
        ax.hist(lat, bins=30, color="tab:orange")
        ax.axvline(np.median(lat), color="black", ls="--", label=f"median {np.median(lat):.0f} ms")
        ax.legend(fontsize=7)
    ax.set_xlabel("mean inference latency per trial (ms / chunk)")
    ax.set_title("inference latency")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def markdown(run: str, mdir: Path, summary: Sequence[dict], rows: Sequence[dict]) -> str:
    header = {}
    if (mdir / "run.json").is_file():
        header = json.loads((mdir / "run.json").read_text())
    settings, versions = header.get("settings", {}), header.get("versions", {})
    seeds = sorted({r.get("eval_seed") or "?" for r in rows})
    lines = [f"# Evaluation report: {run}", "",
             f"{len(rows)} trials, {len({(r['suite'], r['task_id']) for r in rows})} tasks, "
             f"{len({r['suite'] for r in rows})} suite(s), seeds {', '.join(map(str, seeds))}.", "",
             *[f"**Warning: {note}.**\n" for note in stack_notes(summary, versions)],
             "![report](report.png)", "",
             "| suite | task | name | n | successes | rate | 95% CI | seeds | mean over seeds | std over seeds | errors |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in summary:
        bold = "**" if s["task_id"] == "mean" else ""
        lines.append(f"| {s['suite']} | {s['task_id']} | {s['task_name']} | {s['n']} | {s['successes']} | "
                     f"{bold}{s['success_rate']}{bold} | [{s['ci95_low']}, {s['ci95_high']}] | {s['seeds']} | "
                     f"{s['seed_mean']} | {s['seed_std'] or '-'} | {s['errors']} |")
    table = robustness_table(summary)
    if table:
        cols = list(dict.fromkeys(k for r in table for k in r if k != "suite"))
        lines += ["", "## Robustness (LIBERO-PRO): suite mean success [95% CI]", "",
                  "| suite | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
        lines += [f"| {r['suite']} | " + " | ".join(r.get(c, "-") for c in cols) + " |" for r in table]
    lat = _num(rows, "mean_infer_ms")
    if len(lat):
        lines += ["", f"Inference latency per chunk (trial means): median {np.median(lat):.1f} ms, "
                      f"90th percentile {np.percentile(lat, 90):.1f} ms, max {lat.max():.1f} ms."]
    if settings:
        lines += ["", "## Settings", ""] + [f"- {k}: `{v}`" for k, v in settings.items()]
    if versions:
        lines += ["", "## Simulator stack", ""] + [f"- {k}: `{v}`" for k, v in versions.items()]
    failed = [r for r in rows if str(r.get("success")) != "1"]
    videos = [r for r in failed if r.get("video")]
    lines += ["", f"## Failures ({len(failed)})", ""]
    for r in failed:
        what = f"[video]({Path(r['video']).resolve().as_uri()})" if r.get("video") else "no video"
        err = f" -- error: {r['error']}" if r.get("error") else ""
        lines.append(f"- {r['suite']} task {r['task_id']} seed {r.get('eval_seed', '')} trial {r['trial']}: "
                     f"{what}{err}")
    if failed and not videos:
        lines.append("(videos of failures are kept with `--video failures`, the default)")
    return "\n".join(lines) + "\n"


def write_report(mdir: Path) -> Path:
    """report.md + report.png of the run in ``mdir``; returns the markdown path."""
    rows = latest_rows(read_rows(mdir / "trials.csv"))
    if not rows:
        raise ReportError(f"{mdir / 'trials.csv'}: no trials to report")
    summary = summarize(rows)
    plot(summary, rows, mdir / "report.png")
    path = mdir / "report.md"
    atomic_write_text(path, markdown(mdir.name, mdir, summary, rows))
    return path


def log_wandb(mdir: Path, project: str, max_videos: int = 8) -> str:
    """Log a run to Weights & Biases: the per-task and per-suite success rates with their intervals
    (a table and ``success/<suite>/<task>`` values), the report figure and up to ``max_videos``
    trial videos. Offline unless an API key is set (``WANDB_MODE`` overrides); returns the run folder."""
    import os

    import wandb

    rows = latest_rows(read_rows(mdir / "trials.csv"))
    summary = summarize(rows)
    header = json.loads((mdir / "run.json").read_text()) if (mdir / "run.json").is_file() else {}
    os.environ.setdefault("WANDB_MODE", "online" if os.environ.get("WANDB_API_KEY") else "offline")
    run = wandb.init(project=project, name=mdir.name, dir=str(mdir), config=header.get("settings", {}),
                     job_type="eval", reinit="finish_previous")
    try:
        cols = list(summary[0]) if summary else []
        run.log({"summary": wandb.Table(columns=cols, data=[[str(r[c]) for c in cols] for r in summary]),
                 **{f"success/{r['suite']}/{r['task_id']}": float(r["success_rate"]) for r in summary}})
        if (mdir / "report.png").is_file():
            run.log({"report": wandb.Image(str(mdir / "report.png"))})
        videos = [r for r in rows if r.get("video") and Path(r["video"]).is_file()][:max_videos]
        for r in videos:
            run.log({f"video/{r['suite']}_task{r['task_id']}_s{r.get('eval_seed', '')}_trial{r['trial']}":
                     wandb.Video(r["video"], format="mp4")})
        return str(run.dir)
    finally:
        run.finish()


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", help="run name (outs/metrics/<run>) or the run's metrics folder")
    ap.add_argument("--out_root", default="outs")
    ap.add_argument("--wandb", nargs="?", const="rdt-libero-eval", default=None, metavar="PROJECT",
                    help="also log the rates, the figure and videos to W&B (offline without an API key)")
    args = ap.parse_args(argv)
    mdir = Path(args.run) if Path(args.run).is_dir() else metrics_dir(args.out_root, args.run)
    if not (mdir / "trials.csv").is_file():
        raise ReportError(f"no trials.csv in {mdir}")
    path = write_report(mdir)
    print(f"report: {path}\nfigure: {mdir / 'report.png'}", file=sys.stdout)
    if args.wandb:
        print(f"wandb: {log_wandb(mdir, args.wandb)}")
    return 0


if __name__ == "__main__":
    exit_cli(main)
