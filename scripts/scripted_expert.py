"""Measure the scripted expert's success rate in the LIBERO simulator (privileged-state plans).

On a task's standard init states (the evaluation protocol: reset, ``reset_to_state``,
``NUM_STEPS_WAIT`` settle steps, at most the suite's step budget, success = the env's ``done``),
or with ``--random-resets N`` on ``env.reset()`` placements (what the expert datasets are made
from). The expert is `libero_eval.demos.expert`; its plans and their measured rates are in
`libero_eval/demos/goal_plans.py` and `object_plans.py`.

    python -m scripts.scripted_expert --suite libero_goal --task put_the_bowl_on_the_stove \
        --eval-init-states 50

``--task`` takes a task id or a task name (``put_the_bowl_on_the_stove`` or the instruction with
spaces); ``--task all`` runs every supported task of the suite.
"""
from __future__ import annotations

import argparse
import logging
from typing import Sequence

from configs.errors import exit_cli
from libero_eval.demos.expert import evaluate, supported_tasks


def summary(r: dict, random_resets: int) -> str:
    src = f"{r['episodes']} random resets" if random_resets else f"init states 0..{r['episodes'] - 1}"
    return (f"{r['suite']} task {r['task_id']} {r['task']}: {r['successes']}/{r['episodes']} "
            f"({100 * r['success_rate']:.0f}%) on {src}; steps to success mean {r['mean_steps_success']:.0f} "
            f"max {r['max_steps_success']}; failures {r['failures']} (phase {r['fail_phases']}); "
            f"{r['wall_s']:.0f} s")


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--suite", default="libero_goal")
    ap.add_argument("--task", nargs="+", default=["all"], help="task ids / names, or 'all' (supported ones)")
    ap.add_argument("--eval-init-states", type=int, default=50, help="episodes from the benchmark init states 0..N-1")
    ap.add_argument("--random-resets", type=int, default=0, help="episodes from env.reset() placements instead")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    tasks = supported_tasks(args.suite) if args.task == ["all"] else args.task
    for task in tasks:
        r = evaluate(args.suite, task, args.eval_init_states, args.random_resets, args.seed, args.verbose)
        print(summary(r, args.random_resets), flush=True)
    return 0


if __name__ == "__main__":
    exit_cli(main)
