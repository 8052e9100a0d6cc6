"""Closed-loop check of the action encoding in the LIBERO simulator.

Drives the arm from each demo's first state open loop (the recorded 7-d actions) and closed loop
(``abs_goal`` targets decoded against the LIVE pose, as evaluation does) and prints the largest
distance of each from the recorded end-effector path; what is measured and why is in
``libero_eval/action_tracking.py``.

Usage::

    python -m scripts.check_action_tracking                         # fixture file + 2 fresh sim demos
    python -m scripts.check_action_tracking data/datasets/libero_goal/*.hdf5 --no_fixture --no_generate
"""
from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path
from typing import Sequence

from configs.errors import exit_cli
from data import libero_hdf5 as lh5
from libero_eval.action_tracking import FIXTURE, TrackingResult, check_file, print_table

log = logging.getLogger("check_action_tracking")


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*", help="LIBERO HDF5 files to check")
    ap.add_argument("--no_fixture", action="store_true", help="skip the LIBERO-made fixture file (tests/fixtures/libero_format)")
    ap.add_argument("--no_generate", action="store_true", help="do not make fresh simulator demos")
    ap.add_argument("--suite", default="libero_goal", help="suite of the generated demos")
    ap.add_argument("--task", type=int, default=1, help="task id of the generated demos")
    ap.add_argument("--episodes", type=int, default=2, help="number of generated demos")
    ap.add_argument("--format", choices=("raw", "no_noops"), default="raw", help="layout of the generated demos")
    ap.add_argument("--max_demos", type=int, default=None, help="check at most this many demos per file")
    args = ap.parse_args(argv)

    files = [Path(p) for p in args.files]
    if not args.no_fixture:
        if FIXTURE.is_file():
            files.insert(0, FIXTURE)
        else:
            log.warning("fixture file not found at %s; skipped", FIXTURE)
    results: list[TrackingResult] = []
    with tempfile.TemporaryDirectory(prefix="rdt_tracking_") as tmp:
        if not args.no_generate:
            from libero_eval.demos.motion import make_dataset

            files += make_dataset(args.suite, [args.task], args.episodes, tmp, fmt=args.format, progress=False)
        if not files:
            ap.error("nothing to check")
        try:
            for p in files:
                results += check_file(p, args.max_demos)
        except (lh5.LiberoDataError, ValueError) as exc:
            log.error("%s", exc)
            return 2
    print_table(results)
    return 0


if __name__ == "__main__":
    exit_cli(main)
