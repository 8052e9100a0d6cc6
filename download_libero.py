"""Download LIBERO demonstration datasets from the Hugging Face hub into data/datasets/<suite>/.

    python download_libero.py                                   # all five suites, raw LIBERO files
    python download_libero.py --suites libero_10 libero_goal
    python download_libero.py --source no_noops --repo_id <hub dataset with <suite>_no_noops/*.hdf5>
    python download_libero.py --verify --suites libero_goal     # check what is on disk, no network
    python download_libero.py --format lerobot                  # physical-intelligence/libero (LeRobot format)
    python download_libero.py --format lerobot --repo_id HuggingFaceVLA/libero

Downloads are staged, verified and only then renamed into place (`data.download`), so a crash or
Ctrl-C never leaves a partial file under data/datasets/<suite>/ that looks complete; rerunning
resumes. With ``--format lerobot`` a whole LeRobot dataset repo is fetched into
data/datasets/lerobot/<owner>/<name>/; register it in configs/finetune_datasets.json with
``"format": "lerobot"``.

Without network access the script prints one line naming the repository and what to do (copy the
files by hand, or set HF_ENDPOINT to a mirror) and exits with status 3.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

from configs.errors import exit_cli
from configs.suites import LIBERO_SUITES
from data.download import (LEROBOT_DEFAULT_REPO, SOURCES, download_lerobot, download_suite, lerobot_dest,
                           verify_lerobot)
from data.hub import HubUnavailable

REPO_ROOT = Path(__file__).resolve().parent
EXIT_NETWORK, EXIT_VERIFY, EXIT_USAGE = 3, 1, 2

log = logging.getLogger("download_libero")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--suites", nargs="+", default=None, choices=LIBERO_SUITES, help="suites (default: all five; HDF5 only)")
    ap.add_argument("--format", choices=("hdf5", "lerobot"), default="hdf5",
                    help="hdf5: one LIBERO file per task (default); lerobot: a LeRobot dataset repo, all suites "
                    "in one (default repo %s)" % LEROBOT_DEFAULT_REPO)
    ap.add_argument("--source", choices=tuple(SOURCES), default="raw",
                    help="raw: official LIBERO files (128x128, obs after action); no_noops: OpenVLA regeneration")
    ap.add_argument("--repo_id", default=None, help="hub dataset repo (default for raw: %s)" % SOURCES["raw"]["repo_id"])
    ap.add_argument("--pattern", default=None,
                    help="glob of a suite's files in the repo, with {suite} (default raw: '{suite}/*.hdf5')")
    ap.add_argument("--revision", default=None, help="hub revision (branch / tag / commit)")
    ap.add_argument("--out", default=str(REPO_ROOT / "data" / "datasets"), help="dataset root (default data/datasets)")
    ap.add_argument("--checksum", action="store_true", help="also compare sha256 with the hub's LFS hash (slow)")
    ap.add_argument("--verify", action="store_true", help="only verify the suites' folders on disk (no network)")
    ap.add_argument("--no_progress", action="store_true", help="no progress bar")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)  # our own one-line error says it all
    args = build_parser().parse_args(argv)
    out = Path(args.out)
    if args.format == "lerobot":
        return main_lerobot(args, out)
    args.suites = args.suites or list(LIBERO_SUITES)
    src = SOURCES[args.source]
    if args.verify:
        from data.verify import verify_folders

        folders = [out / src["dest"].format(suite=s) for s in args.suites]
        return 0 if verify_folders(folders) else EXIT_VERIFY
    repo_id = args.repo_id or src["repo_id"]
    if not repo_id:
        print(f"error: --source {args.source} has no official hub repo; pass --repo_id (and --pattern if its "
              f"files are not under '{src['pattern']}')", file=sys.stderr)
        return EXIT_USAGE
    pattern = args.pattern or src["pattern"]
    def download_all() -> None:
        for suite in args.suites:
            files = download_suite(suite, args.source, repo_id, pattern, out, args.revision, args.checksum,
                                   progress=not args.no_progress)
            log.info("%s: %d files in %s", suite, len(files), files[0].parent if files else out)

    return exit_status(download_all, "completed files are in place; rerun to resume the rest")


def exit_status(download, on_interrupt: str) -> int:
    """Run ``download()``; its failures end the program with one line and a status: no hub
    (EXIT_NETWORK), a file that fails verification (EXIT_VERIFY), Ctrl-C (130)."""
    try:
        download()
    except HubUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_NETWORK
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_VERIFY
    except KeyboardInterrupt:
        print(f"interrupted: {on_interrupt}", file=sys.stderr)
        return 130
    return 0


def main_lerobot(args, out: Path) -> int:
    if args.suites or args.source != "raw" or args.pattern or args.checksum:
        print("error: --suites / --source / --pattern / --checksum do not apply to --format lerobot (a LeRobot repo "
              "is one dataset holding its suites; choose it with --repo_id)", file=sys.stderr)
        return EXIT_USAGE
    repo_id = args.repo_id or LEROBOT_DEFAULT_REPO
    if args.verify:
        dest = lerobot_dest(out, repo_id)
        problem = verify_lerobot(dest)
        if problem:
            print(f"ERROR {problem}")
            return EXIT_VERIFY
        print(f"{repo_id}: ok ({dest})")
        return 0
    def download() -> None:
        dest = download_lerobot(repo_id, out, args.revision)
        log.info("%s: in place at %s; add it to configs/finetune_datasets.json with \"format\": \"lerobot\"",
                 repo_id, dest)

    return exit_status(download, "rerun to resume (the partial download stays in the staging folder)")


if __name__ == "__main__":
    exit_cli(main)
