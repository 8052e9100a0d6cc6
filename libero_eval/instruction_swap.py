"""The instruction-swap diagnostic: does the instruction decide what a policy does?

In libero_goal the tasks share one scene, but each task also has its own init states, so a policy
could tell two tasks apart by the layout alone. Here the same policy runs on task X's init states
prompted with task Y's instruction, for every pair (X, Y) of the given tasks; after every step the
goals of all of them are evaluated with LIBERO's own predicates (``libero_eval.goals``), and a trial
ends when the prompted task's goal holds or the suite's budget is spent. Its record is which goals
hold at the end.

The matrix has one row per instruction and one column per achieved goal (plus "none"), counted over
every init-state task. A policy that follows the language has a strong diagonal; one that ignores it
has identical rows (it does the task of the init state, whatever it is told). Where the scenes differ
(libero_object: each has 7 of the 10 groceries), a prompt may name an object the init state's scene
lacks: that trial's ``followed`` is empty (the prompted goal cannot hold there) and it still shows
what the policy did instead. Trials that ended in an error count nowhere; their number is printed. ``eval_rdt_libero
--instruction_swap`` runs it for a checkpoint; the rows go to ``swap_trials.csv`` as each trial
ends (a rerun skips the trials already there), the matrix to ``swap_matrix.csv`` and
``swap_matrix.png``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from libero_eval import env as lenv
from libero_eval.goals import suite_goals
from libero_eval.metrics import append_row, check_columns, read_rows, write_csv_atomic
from libero_eval.runner import Active, Job

SWAP_FIELDS = ("suite", "init_task", "instruction_task", "trial", "init_state_idx", "seed", "instruction",
               "achieved", "followed", "steps", "wall_time_s", "error")
NONE = "none"


@dataclass(frozen=True)
class SwapPlan:
    """The pairs to run: ``tasks`` (ids) of ``suite``, ``num_trials`` init states per pair and seed."""
    suite: str
    tasks: tuple[int, ...]
    num_trials: int
    seeds: tuple[int, ...]
    max_steps: int
    settle_steps: int

    def __post_init__(self) -> None:
        if len(self.tasks) < 2:
            raise ValueError(f"the instruction swap needs at least 2 tasks of one scene, got {list(self.tasks)}")


def swap_key(row: dict) -> tuple:
    return (row["suite"], int(row["init_task"]), int(row["instruction_task"]), int(row["seed"]), int(row["trial"]))


def swap_jobs(plan: SwapPlan, instruction_of: Callable[[int], str], done: set = frozenset()) -> list[Job]:
    """One job per (init-state task X, instruction task Y, seed, trial) not in ``done``: task X's init
    state ``trial % 50`` with env / noise seed ``seed + trial``, prompted with Y's instruction, ending
    on Y's goal; every task's goal is tracked."""
    suite = lenv.get_suite(plan.suite)
    names = {t: lenv.get_task(suite, t).name for t in plan.tasks}
    goals = suite_goals(suite, plan.tasks)
    jobs = []
    for x in plan.tasks:
        init_states = lenv.get_task_init_states(suite, x)
        for y in plan.tasks:
            for seed in plan.seeds:
                for i in range(plan.num_trials):
                    if (plan.suite, x, y, seed, i) in done:
                        continue
                    jobs.append(Job(suite=plan.suite, task_id=x, task_name=names[x], trial=i,
                                    init_state_idx=i % len(init_states), seed=seed + i, eval_seed=seed,
                                    instruction=instruction_of(y), init_state=init_states[i % len(init_states)],
                                    max_steps=plan.max_steps, settle_steps=plan.settle_steps,
                                    video_stem=f"swap_{plan.suite}_init{x}_instr{y}_s{seed}_trial{i}",
                                    goals=goals, stop_goal=names[y]))
    return jobs


def swap_recorder(csv_path: Path, plan: SwapPlan):
    """``on_result`` for the runner: one fsynced row per finished trial."""
    suite = lenv.get_suite(plan.suite)
    task_of = {lenv.get_task(suite, t).name: t for t in plan.tasks}

    def on_result(job: Job, act: Optional[Active], video: str, error: str) -> None:
        achieved = [] if act is None or error else list(act.achieved)
        # "" when the prompted task's object is not in this scene: its goal cannot hold here
        followed = "" if act is not None and job.stop_goal in act.unavailable else int(job.stop_goal in achieved)
        append_row(csv_path, {
            "suite": job.suite, "init_task": job.task_id, "instruction_task": task_of[job.stop_goal],
            "trial": job.trial, "init_state_idx": job.init_state_idx, "seed": job.eval_seed,
            "instruction": job.instruction, "achieved": ";".join(str(task_of[a]) for a in achieved),
            "followed": followed, "steps": act.steps if act else 0,
            "wall_time_s": f"{time.perf_counter() - act.t0:.2f}" if act else "", "error": error,
        }, SWAP_FIELDS)
    return on_result


def done_trials(csv_path: Path, retry_errors: bool = False) -> set:
    """Keys of the trials already in ``swap_trials.csv`` (refusing a file of other columns)."""
    check_columns(csv_path, SWAP_FIELDS)
    return {swap_key(r) for r in read_rows(csv_path, SWAP_FIELDS) if not (retry_errors and r["error"])}


def swap_matrix(rows: Sequence[dict], tasks: Sequence[int]) -> np.ndarray:
    """(len(tasks), len(tasks) + 1) counts: row = instruction task, column = achieved goal's task, the
    last column "none"; a trial in which two goals hold counts in both columns; errored trials count
    nowhere (``swap_summary`` counts them)."""
    index = {t: k for k, t in enumerate(tasks)}
    m = np.zeros((len(tasks), len(tasks) + 1), dtype=int)
    for r in rows:
        if r.get("error"):
            continue
        y = index.get(int(r["instruction_task"]))
        if y is None:
            continue
        achieved = [int(a) for a in str(r["achieved"]).split(";") if a != ""]
        for a in achieved:
            if a in index:
                m[y, index[a]] += 1
        if not any(a in index for a in achieved):
            m[y, -1] += 1
    return m


def swap_summary(rows: Sequence[dict]) -> dict:
    """Over the swapped trials (init task != instruction task): how often the prompted task's goal
    held (the policy followed the words) and how often the init state's own task's did (it followed
    the scene); the same on the unswapped pairs. ``trials`` counts the trials without an error,
    ``evaluable`` those whose prompted goal can hold in the scene (``followed`` not empty), and
    ``errors`` the trials that ended in one (they count in nothing else)."""
    out = {}
    for kind, keep in (("swapped", lambda r: r["init_task"] != r["instruction_task"]),
                       ("unswapped", lambda r: r["init_task"] == r["instruction_task"])):
        sel = [r for r in rows if keep(r)]
        ok = [r for r in sel if not r.get("error")]
        evaluable = [r for r in ok if str(r["followed"]) != ""]
        followed = sum(int(r["followed"]) for r in evaluable)
        scene = sum(str(r["init_task"]) in str(r["achieved"]).split(";") for r in ok)
        out[kind] = {"trials": len(ok), "evaluable": len(evaluable), "instruction_goal": followed,
                     "init_task_goal": int(scene), "errors": len(sel) - len(ok)}
    return out


def format_matrix(m: np.ndarray, tasks: Sequence[int], names: Sequence[str]) -> str:
    """The matrix as text: one line per instruction, counts per achieved goal."""
    cols = [f"T{t}" for t in tasks] + [NONE]
    lines = ["rows: instruction of task; columns: whose goal held at the end (counts over every init-state task)",
             f"{'':<44} " + " ".join(f"{c:>5}" for c in cols)]
    for k, (t, name) in enumerate(zip(tasks, names)):
        lines.append(f"{f'T{t} {name}'[:44]:<44} " + " ".join(f"{v:>5}" for v in m[k]))
    return "\n".join(lines)


def plot_matrix(m: np.ndarray, tasks: Sequence[int], names: Sequence[str], path: Path, title: str) -> Path:
    """The matrix as a heat map (share of each row's trials), counts written in the cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    totals = np.maximum(m.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(2.2 + 1.1 * m.shape[1], 1.6 + 0.7 * m.shape[0]))
    ax.imshow(m / totals, cmap="Blues", vmin=0, vmax=1)
    for (i, j), v in np.ndenumerate(m):
        ax.text(j, i, str(v), ha="center", va="center", color="white" if v / totals[i, 0] > 0.6 else "black")
    ax.set_xticks(range(m.shape[1]), [f"T{t}" for t in tasks] + [NONE])
    ax.set_yticks(range(m.shape[0]), [f"T{t} {n[:38]}" for t, n in zip(tasks, names)])
    ax.set_xlabel("goal achieved (LIBERO predicates)")
    ax.set_ylabel("instruction given")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")  # long instructions: grow the canvas, do not cut them
    plt.close(fig)
    return path


def write_swap_outputs(mdir: Path, plan: SwapPlan, title: str) -> dict:
    """swap_matrix.csv + swap_matrix.png from ``swap_trials.csv``; prints the matrix and the summary."""
    latest = {swap_key(r): r for r in read_rows(mdir / "swap_trials.csv", SWAP_FIELDS) if r["suite"] == plan.suite}
    rows = list(latest.values())  # a trial rerun (--retry_errors) replaces its errored row
    suite = lenv.get_suite(plan.suite)
    names = [lenv.get_task(suite, t).name for t in plan.tasks]
    m = swap_matrix(rows, plan.tasks)
    cols = [f"T{t}" for t in plan.tasks] + [NONE]
    write_csv_atomic(mdir / "swap_matrix.csv",
                     [{"instruction": f"T{t} {n}", **dict(zip(cols, map(int, m[k])))}
                      for k, (t, n) in enumerate(zip(plan.tasks, names))], ["instruction", *cols])
    png = plot_matrix(m, plan.tasks, names, mdir / "swap_matrix.png", title)
    summary = swap_summary(rows)
    print(format_matrix(m, plan.tasks, names))
    s, u = summary["swapped"], summary["unswapped"]
    absent = f" ({s['trials'] - s['evaluable']} more named an object the scene lacks)" if s["evaluable"] < s["trials"] else ""
    print(f"swapped prompts: the prompted task's goal held in {s['instruction_goal']}/{s['evaluable']}{absent}, "
          f"the init state's own task's in {s['init_task_goal']}/{s['trials']}; unswapped: "
          f"{u['instruction_goal']}/{u['evaluable']} succeeded")
    errors = s["errors"] + u["errors"]
    if errors:
        print(f"WARNING: {errors} swap trial(s) ended in an error and count nowhere (their 'error' column in "
              f"{mdir / 'swap_trials.csv'}); rerun with --retry_errors once the cause is fixed")
    print(f"swap trials: {mdir / 'swap_trials.csv'}\nswap matrix: {mdir / 'swap_matrix.csv'}, {png}")
    return {"matrix": m, "summary": summary, "png": png}
