"""Does the installed MuJoCo / robosuite / LIBERO stack reproduce LIBERO's recorded demos and images?

Replays each demo of a raw-layout LIBERO HDF5 file (default: the LIBERO-made fixture) open loop and one
step at a time and compares its physics and camera images with the recorded ones; what each number
means is in ``libero_eval/sim_stack.py``, the measurements in docs/SIM_STACK.md.

Usage::

    python -m scripts.check_sim_stack                      # the fixture file
    python scripts/check_sim_stack.py other_task_demo.hdf5 --no_fixture --max_demos 2
    python -m scripts.check_sim_stack --json out.json --max_replay_mm 20 --max_pixel_mean 1.0

The last line printed is
``replay max <x> mm, pixels mean |diff| <y> levels (mujoco <v>, robosuite <w>)``.
Exit status 1 when a given ``--max_*`` threshold is exceeded, 2 on a data/setup error.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python scripts/check_sim_stack.py`: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
from dataclasses import asdict  # noqa: E402
from typing import Sequence  # noqa: E402

from data import libero_hdf5 as lh5  # noqa: E402
from libero_eval import env as lenv  # noqa: E402
from libero_eval.sim_stack import FIXTURE, DemoResult, check_file, print_report  # noqa: E402
from libero_eval.versions import sim_versions  # noqa: E402

log = logging.getLogger("check_sim_stack")


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*", help="more raw-layout LIBERO HDF5 files to check")
    ap.add_argument("--no_fixture", action="store_true", help="skip the LIBERO-made fixture file")
    ap.add_argument("--max_demos", type=int, default=None, help="check at most this many demos per file")
    ap.add_argument("--no_pixels", action="store_true", help="physics only (no rendering)")
    ap.add_argument("--json", default=None, help="also write the results (and versions) to this JSON file")
    ap.add_argument("--max_replay_mm", type=float, default=None, help="exit 1 if the replay eef max exceeds this")
    ap.add_argument("--max_pixel_mean", type=float, default=None, help="exit 1 if the mean pixel |diff| exceeds this")
    ap.add_argument("--no_model_file", action="store_true",
                    help="keep the fixtures where this env's reset put them (not at the demo's recorded poses)")
    ap.add_argument("--no_alignment", action="store_true", help="skip the t / t+2 pairing check")
    ap.add_argument("--flip", action="store_true", help=argparse.SUPPRESS)  # deliberate mistake (testing)
    ap.add_argument("--state_noise", type=float, default=0.0, help=argparse.SUPPRESS)  # same
    args = ap.parse_args(argv)

    files = [Path(p) for p in args.files]
    if not args.no_fixture:
        files.insert(0, FIXTURE)
    if not files:
        ap.error("nothing to check")
    os.environ.setdefault("MUJOCO_GL", "egl")
    results: list[DemoResult] = []
    try:
        for p in files:
            results += check_file(p, args.max_demos, pixels=not args.no_pixels, alignment=not args.no_alignment,
                                  flip=args.flip, state_noise=args.state_noise,
                                  use_model_file=not args.no_model_file)
    except (lh5.LiberoDataError, ValueError, lenv.RenderBackendError) as exc:
        log.error("%s", exc)
        return 2
    versions = sim_versions()
    summary = print_report(results, versions)
    if args.json:
        Path(args.json).write_text(json.dumps({"versions": versions, "python": platform.python_version(),
                                               "summary": summary, "demos": [asdict(r) for r in results]},
                                              indent=1), encoding="utf-8")
    bad = (args.max_replay_mm is not None and not summary["replay_eef_max_mm"] <= args.max_replay_mm) or \
          (args.max_pixel_mean is not None and not args.no_pixels and not summary["pixel_mean"] <= args.max_pixel_mean)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
