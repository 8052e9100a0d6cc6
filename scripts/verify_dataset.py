"""Verify LIBERO HDF5 dataset folders (downloaded or simulator-made) and print a per-suite summary.

Keys, lengths, NaN/inf, attribute consistency, and the obs/state time alignment measured against
the declared layout (`data.verify` has the list of checks).

Usage::

    python -m scripts.verify_dataset data/datasets/libero_goal data/datasets/libero_10
    python -m scripts.verify_dataset --root data/datasets      # every suite folder under it
    python download_libero.py --verify --suites libero_goal    # same code
Exit status 1 when any file has an error.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Sequence

from configs.errors import exit_cli
from data.verify import suite_folders, verify_folders


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="*", help="suite folders (or single .hdf5 files) to verify")
    ap.add_argument("--root", default=None, help="verify every suite folder under this directory")
    ap.add_argument("--no_alignment", action="store_true", help="skip the obs/state alignment measurement")
    args = ap.parse_args(argv)
    targets = [Path(p) for p in args.folders]
    if args.root:
        targets += suite_folders(args.root)
    if not targets:
        ap.error("give suite folders or --root")
    ok = verify_folders(targets, not args.no_alignment)
    return 0 if ok else 1


if __name__ == "__main__":
    exit_cli(main)
