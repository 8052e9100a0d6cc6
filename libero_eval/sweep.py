"""A suites x tasks x seeds evaluation sweep, one job per (suite, task, seed), through submitit
(SLURM on a cluster, its local executor anywhere), merged into one run: one trials.csv, one
summary with intervals, one report.

    python -m libero_eval.sweep --checkpoint C --suites libero_spatial libero_object libero_goal libero_10 \
        --seeds 0 1 2 --run_name rdt_4suites --executor slurm --slurm_partition gpu --gpus_per_job 1
    python -m libero_eval.sweep ... --executor local          # the same jobs as processes on this machine
    python -m libero_eval.sweep --run_name rdt_4suites --merge_only    # (re)merge finished jobs

Every job is an ordinary ``libero_eval.eval_rdt_libero`` run writing its own run folder
``outs/metrics/<run>/jobs/<suite>_task<k>_s<seed>/`` (no file is shared between jobs, so nothing
depends on file locking over a network file system; a resubmitted job resumes its own trials).
Flags after ``--`` go to every job unchanged (``-- --num_trials 10 --exec_horizon 8``). The merge
concatenates the jobs' rows into ``outs/metrics/<run>/trials.csv`` and writes summary.csv and
report.md/png there; a failed or missing job is listed and the rows that exist are still merged.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional, Sequence

from configs.errors import UserError, exit_cli
from libero_eval.metrics import TRIAL_FIELDS, metrics_dir, print_summary, read_rows, write_csv_atomic, write_summary
from utils.atomic import atomic_write_text


class SweepError(UserError, ValueError):
    pass


def job_name(suite: str, task: int, seed: int) -> str:
    return f"{suite}_task{task}_s{seed}"


def job_argv(args, suite: str, task: int, seed: int, passthrough: Sequence[str]) -> list[str]:
    """The eval_rdt_libero command line of one job (its own run folder under the sweep's)."""
    return ["--checkpoint", args.checkpoint, "--suites", suite, "--task_ids", str(task), "--seeds", str(seed),
            "--run_name", f"{args.run_name}/jobs/{job_name(suite, task, seed)}", "--out_root", args.out_root,
            "--no_progress", *passthrough]


def run_job(argv: Sequence[str]) -> int:
    """What a submitit job executes (a module-level function, so it pickles by reference)."""
    from libero_eval import eval_rdt_libero as ev

    rc = ev.main(list(argv))
    if rc != 0:
        raise RuntimeError(f"eval_rdt_libero {' '.join(argv)} exited with {rc}")
    return rc


def task_ids(args) -> dict[str, list[int]]:
    from libero_eval import env as lenv

    out = {}
    for suite in args.suites:
        n = lenv.get_suite(suite).n_tasks
        out[suite] = list(args.task_ids) if args.task_ids else list(range(n))
    return out


def make_executor(args):
    import submitit

    folder = metrics_dir(args.out_root, args.run_name) / "submitit"
    if args.executor == "local":
        ex = submitit.LocalExecutor(folder=str(folder))
        ex.update_parameters(timeout_min=args.timeout_min)
    else:
        ex = submitit.AutoExecutor(folder=str(folder), cluster=None if args.executor == "slurm" else args.executor)
        ex.update_parameters(timeout_min=args.timeout_min, gpus_per_node=args.gpus_per_job,
                             cpus_per_task=args.cpus_per_job, slurm_partition=args.slurm_partition,
                             name=f"eval_{args.run_name}")
    return ex


def submit(args, passthrough: Sequence[str]) -> list[tuple[str, object]]:
    """Submit every (suite, task, seed) job; returns (job name, submitit job)."""
    specs = [(s, t, seed) for s, ids in task_ids(args).items() for t in ids for seed in args.seeds]
    ex = make_executor(args)
    jobs = []
    with ex.batch():
        for s, t, seed in specs:
            jobs.append((job_name(s, t, seed), ex.submit(run_job, job_argv(args, s, t, seed, passthrough))))
    print(f"[sweep] submitted {len(jobs)} job(s) to {args.executor} (logs: {metrics_dir(args.out_root, args.run_name) / 'submitit'})")
    return jobs


def wait(jobs: Sequence[tuple[str, object]]) -> list[str]:
    """Wait for every job; the names of the failed ones."""
    failed = []
    for name, job in jobs:
        try:
            job.result()
        except Exception as exc:  # a job's failure is reported, the others are still merged
            failed.append(name)
            print(f"[sweep] job {name} failed: {str(exc).strip().splitlines()[-1] if str(exc).strip() else exc}",
                  file=sys.stderr)
    return failed


def merge(out_root: str, run: str) -> tuple[Path, int]:
    """Concatenate the jobs' trials into the run's trials.csv; (run folder, number of jobs merged)."""
    mdir = metrics_dir(out_root, run)
    job_dirs = sorted(p.parent for p in (mdir / "jobs").glob("*/trials.csv"))
    if not job_dirs:
        raise SweepError(f"no finished job in {mdir / 'jobs'} (nothing to merge)")
    rows = [r for d in job_dirs for r in read_rows(d / "trials.csv")]
    write_csv_atomic(mdir / "trials.csv", rows, TRIAL_FIELDS)
    settings = [json.loads((d / "run.json").read_text())["settings"] for d in job_dirs if (d / "run.json").is_file()]
    if settings and any(s != settings[0] for s in settings):
        raise SweepError(f"the jobs in {mdir / 'jobs'} were evaluated with different settings: remove the stale "
                         f"job folders or use another --run_name")
    if settings:
        atomic_write_text(mdir / "run.json", (job_dirs[0] / "run.json").read_text())
    return mdir, len(job_dirs)


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    passthrough = argv[argv.index("--") + 1:] if "--" in argv else []
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint")
    ap.add_argument("--suites", nargs="+", default=["libero_goal"])
    ap.add_argument("--task_ids", type=int, nargs="*", default=None, help="default: every task of each suite")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--run_name", required=True)
    ap.add_argument("--out_root", default="outs")
    ap.add_argument("--executor", choices=("slurm", "local", "debug"), default="slurm",
                    help="slurm: one SLURM job per (suite, task, seed); local: processes here; debug: in this process")
    ap.add_argument("--slurm_partition", default=None)
    ap.add_argument("--gpus_per_job", type=int, default=1)
    ap.add_argument("--cpus_per_job", type=int, default=4)
    ap.add_argument("--timeout_min", type=int, default=240)
    ap.add_argument("--merge_only", action="store_true", help="only merge the finished jobs of --run_name")
    args = ap.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    failed: list[str] = []
    if not args.merge_only:
        if not args.checkpoint:
            raise SweepError("--checkpoint is required (or --merge_only)")
        from configs.suites import check_suite

        for s in args.suites:
            check_suite(s, "--suites")
        failed = wait(submit(args, passthrough))
    mdir, n = merge(args.out_root, args.run_name)
    print_summary(write_summary(mdir))
    from libero_eval.report import write_report

    print(f"[sweep] merged {n} job(s): {mdir / 'trials.csv'}\nsummary: {mdir / 'summary.csv'}\n"
          f"report: {write_report(mdir)}")
    if failed:
        print(f"[sweep] {len(failed)} job(s) failed: {', '.join(failed)}; rerun the same command to resume them",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    exit_cli(main)
