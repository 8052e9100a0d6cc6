"""Make LIBERO expert datasets: the scripted expert solving tasks in the simulator from randomised
resets (never the benchmark's init states), recorded in LIBERO's HDF5 layout.

Episodes end ``--post_success_steps`` steps after the env's ``done`` (the goal held through them, as
LIBERO's collect_demonstration.py records); only successful ones are kept, until ``--episodes`` demos
(at most ``--max_attempts`` tries). The arm's joints start scattered by ``--robot_init_noise`` rad,
as in the benchmark's init states. ``--format raw`` (128 px, LIBERO create_dataset layout, obs
after action, cap_index 5) or ``no_noops`` (256 px, OpenVLA regeneration layout, obs before
action). The code is `libero_eval.demos.expert_data`.

Usage::

    python -m scripts.make_expert_dataset --suite libero_goal --tasks put_the_bowl_on_the_stove 8 \
        --episodes 30 --format raw --out data/datasets/expert
    # -> data/datasets/expert/libero_goal/put_the_bowl_on_the_stove_demo.hdf5, ...

Deterministic given ``--seed`` (same placements, same expert variations). Each file is written
under a temporary name and renamed when complete.
"""
from __future__ import annotations

import argparse
import logging
from typing import Sequence

from configs.errors import exit_cli
from configs.suites import LIBERO_SUITES, check_suite
from libero_eval import env as lenv
from libero_eval.demos.expert import supported_tasks
from libero_eval.demos.expert_data import make_task_files
from libero_eval.demos.recording import FORMATS, POST_SUCCESS_STEPS, ROBOT_INIT_NOISE

log = logging.getLogger("make_expert_dataset")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", default="libero_goal", help=f"one of {', '.join(LIBERO_SUITES)}")
    ap.add_argument("--tasks", nargs="+", default=["all"],
                    help="task ids or names (the suite's task name or its instruction); 'all' = every task the "
                         "expert supports in the suite")
    ap.add_argument("--episodes", type=int, default=30, help="successful demos per task")
    ap.add_argument("--max_attempts", type=int, default=None, help="episodes tried per task (default 2*episodes+5)")
    ap.add_argument("--out", default="data/datasets/expert", help="files go to <out>/<suite>/<task>_demo.hdf5")
    ap.add_argument("--format", choices=FORMATS, default="raw")
    ap.add_argument("--resolution", type=int, default=None, help="camera size (default 128 raw, 256 no_noops)")
    ap.add_argument("--seed", type=int, default=0, help="placement and expert-variation seed")
    ap.add_argument("--post_success_steps", type=int, default=POST_SUCCESS_STEPS,
                    help="steps recorded after the goal is reached, the goal held (LIBERO's collect_demonstration.py: "
                         "10; 0 = end at the success step)")
    ap.add_argument("--robot_init_noise", type=float, default=ROBOT_INIT_NOISE,
                    help="std (rad) of the Gaussian noise on each arm joint at a reset, robosuite's default, which "
                         "LIBERO's init states show; 0 = every demo from the nominal arm pose")
    ap.add_argument("--no_overwrite", action="store_true", help="skip tasks whose file already exists")
    ap.add_argument("--workers", type=int, default=1,
                    help="tasks recorded at once, one process (and about one core) each")
    ap.add_argument("--no_progress", action="store_true")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        lenv.check_render_backend()
        check_suite(args.suite, "--suite")
        tasks = supported_tasks(args.suite) if args.tasks == ["all"] else args.tasks
        if args.workers < 1:
            raise ValueError(f"--workers {args.workers}: expected at least 1")
        if args.post_success_steps < 0:
            raise ValueError(f"--post_success_steps {args.post_success_steps}: expected >= 0")
        if not args.robot_init_noise >= 0:
            raise ValueError(f"--robot_init_noise {args.robot_init_noise}: expected >= 0 (rad)")
        paths = make_task_files(args.suite, tasks, args.episodes, args.out, workers=args.workers, fmt=args.format,
                                resolution=args.resolution, seed=args.seed, max_attempts=args.max_attempts,
                                post_success_steps=args.post_success_steps, robot_init_noise=args.robot_init_noise,
                                overwrite=not args.no_overwrite, progress=not args.no_progress)
    except (ValueError, lenv.RenderBackendError) as exc:
        log.error("%s", exc)
        return 2
    for p in paths:
        if p is not None:
            print(p)
    return 0 if all(p is not None for p in paths) else 1


if __name__ == "__main__":
    exit_cli(main)
