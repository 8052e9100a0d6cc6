"""Make LIBERO demo datasets by rolling out a scripted motion in the real LIBERO simulator.

The files are in the layout of LIBERO's own ``scripts/create_dataset.py``: ``--format raw``
(default, 128x128, obs after action) or ``no_noops`` (OpenVLA-style regeneration, 256x256, obs
before action, no-ops skipped; with ``--only_success`` only episodes that end in task success are
kept). Episode k starts from the task's init state k; the motion varies per episode from
``--seed``. The demos do not solve the task: they exercise the pipeline without any download.
The code is `libero_eval.demos.motion` (the motion) and `libero_eval.demos.recording` (the files).

Usage::

    python -m scripts.make_demo_dataset --suite libero_goal --tasks 0 1 --episodes 3 \
        --out data/datasets/demo_libero
    # -> data/datasets/demo_libero/libero_goal/<task_name>_demo.hdf5

Each file is written under a temporary name and renamed when complete.
"""
from __future__ import annotations

import argparse
import logging
from typing import Sequence

from configs.errors import exit_cli
from configs.suites import LIBERO_SUITES, check_suite
from libero_eval import env as lenv
from libero_eval.demos.motion import make_dataset
from libero_eval.demos.recording import FORMATS

log = logging.getLogger("make_demo_dataset")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", default="libero_goal", help=f"one of {', '.join(LIBERO_SUITES)}")
    ap.add_argument("--tasks", type=int, nargs="+", default=[0], help="task ids within the suite")
    ap.add_argument("--episodes", type=int, default=3, help="demos per task (episode k starts from init state k)")
    ap.add_argument("--out", default="data/datasets/demo_libero", help="files go to <out>/<suite>/<task>_demo.hdf5")
    ap.add_argument("--format", choices=FORMATS, default="raw",
                    help="raw: LIBERO create_dataset layout; no_noops: OpenVLA-style regeneration")
    ap.add_argument("--resolution", type=int, default=None, help="camera size (default 128 raw, 256 no_noops)")
    ap.add_argument("--only_success", action="store_true", help="keep only episodes that end in task success")
    ap.add_argument("--seed", type=int, default=0, help="env seed and motion-variation seed")
    ap.add_argument("--length_scale", type=float, default=1.0, help="scale all phase lengths (shorter demos < 1)")
    ap.add_argument("--no_overwrite", action="store_true", help="skip tasks whose file already exists")
    ap.add_argument("--no_progress", action="store_true", help="disable the tqdm progress bar")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        check_suite(args.suite, "--suite")
        paths = make_dataset(
            args.suite, args.tasks, args.episodes, args.out, fmt=args.format, resolution=args.resolution,
            seed=args.seed, length_scale=args.length_scale, only_success=args.only_success,
            overwrite=not args.no_overwrite, progress=not args.no_progress,
        )
    except (ValueError, lenv.RenderBackendError) as exc:
        log.error("%s", exc)
        return 2
    for p in paths:
        print(p)
    return 0


if __name__ == "__main__":
    exit_cli(main)
