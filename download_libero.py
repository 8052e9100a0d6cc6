"""Download LIBERO demonstration datasets from the Hugging Face hub into data/datasets/<suite>/.

    python download_libero.py                                   # all five suites, raw LIBERO files
    python download_libero.py --suites libero_10 libero_goal
    python download_libero.py --source no_noops --repo_id <hub dataset with <suite>_no_noops/*.hdf5>
    python download_libero.py --verify --suites libero_goal     # check what is on disk, no network
    python download_libero.py --format lerobot                  # physical-intelligence/libero (LeRobot format)
    python download_libero.py --format lerobot --repo_id HuggingFaceVLA/libero

How a file gets into place (a crash or Ctrl-C at any moment never leaves a partial file under
data/datasets/<suite>/ that looks complete):
1. the remote listing (names, sizes, LFS sha256) is read for the chosen suites;
2. files already in place with the right size are skipped (re-running resumes);
3. each missing file is downloaded with `huggingface_hub.hf_hub_download` into the staging folder
   data/datasets/.staging/ (the hub client itself resumes interrupted downloads there);
4. it is verified there: size equal to the hub's, sha256 with --checksum, and it opens as a LIBERO
   HDF5 file with demos;
5. only then it is renamed into data/datasets/<dest>/ (same filesystem: an atomic rename).

With ``--format lerobot`` a whole LeRobot dataset repo (all its suites; data/, meta/, videos/) is
fetched with `huggingface_hub.snapshot_download` into data/datasets/.staging/ (resumable), verified
there (``data.lerobot_dataset.verify``: metadata, every state/action column, video files, a decoded
frame per camera) and renamed into data/datasets/lerobot/<owner>/<name>/; register it in
configs/finetune_datasets.json with ``"format": "lerobot"``.

Without network access the script prints one line naming the repository and what to do (copy the
files by hand, or set HF_ENDPOINT to a mirror) and exits with status 3.
"""
from __future__ import annotations

import argparse
import fnmatch
import hashlib
import logging
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from configs.errors import exit_cli
from configs.suites import LIBERO_SUITES

REPO_ROOT = Path(__file__).resolve().parent
# Where each source lives on the hub, which files belong to a suite, and the local folder name.
# The official raw files (LIBERO's create_dataset layout, 128x128) are in the dataset repo
# yifengzhu-hf/LIBERO-datasets, one folder per suite. No-noops HDF5 files (OpenVLA's regeneration,
# 256x256) have no official hub repo: pass the one you use with --repo_id.
SOURCES = {
    "raw": {"repo_id": "yifengzhu-hf/LIBERO-datasets", "pattern": "{suite}/*.hdf5", "dest": "{suite}"},
    "no_noops": {"repo_id": None, "pattern": "{suite}_no_noops/*.hdf5", "dest": "{suite}_no_noops"},
}
# LeRobot-format LIBERO (openpi's examples/libero/convert_libero_data_to_lerobot.py): openpi's conversion of the four no-noops suites (v2.0, PNG);
# the LeRobot team's HuggingFaceVLA/libero and lerobot/libero (v3.0) also read.
LEROBOT_DEFAULT_REPO = "physical-intelligence/libero"
LEROBOT_DEST = "lerobot"  # data/datasets/lerobot/<owner>/<name>
EXIT_NETWORK, EXIT_VERIFY, EXIT_USAGE = 3, 1, 2

log = logging.getLogger("download_libero")


class HubUnavailable(RuntimeError):
    """The hub (or the repo) cannot be reached; the message says what to do."""


@dataclass
class RemoteFile:
    path: str  # path inside the repo
    size: int | None
    sha256: str | None


def _hub_error(repo_id: str, exc: BaseException, dest_hint: str, files: str = "the suite's *.hdf5 files",
               check: str = "python download_libero.py --verify") -> HubUnavailable:
    """One actionable line for any failure to talk to the hub."""
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    name = type(exc).__name__
    if name in ("RepositoryNotFoundError", "RevisionNotFoundError"):
        what = f"dataset repo {repo_id!r} (or its revision) was not found on {endpoint}"
    elif name == "GatedRepoError":
        what = f"dataset repo {repo_id!r} on {endpoint} needs authentication (run `hf auth login` or set HF_TOKEN)"
    else:
        what = f"cannot reach the Hugging Face hub at {endpoint} for dataset repo {repo_id!r}"
    detail = str(exc).splitlines()[0][:160] if str(exc) else name
    return HubUnavailable(
        f"{what} ({name}: {detail}). Copy {files} by hand into {dest_hint}, or set "
        f"HF_ENDPOINT to a reachable mirror, then rerun; check them with `{check}`."
    )


def probe_endpoint(repo_id: str, dest_hint: str, timeout: float = 5.0, **hint) -> None:
    """Fail fast (one TCP connect) when the hub host is unreachable, instead of the hub client's
    ~25 s of retries. Skipped behind a proxy, where a direct connect proves nothing."""
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY")):
        return
    from urllib.parse import urlparse

    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=timeout).close()
    except OSError as exc:
        raise _hub_error(repo_id, exc, dest_hint, **hint) from exc


def list_remote(repo_id: str, suite: str, pattern: str, revision: str | None, dest_hint: str) -> list[RemoteFile]:
    """Files of one suite in the hub repo (name, size, sha256)."""
    from huggingface_hub import HfApi

    glob = pattern.format(suite=suite)
    folder = glob.split("*")[0].rstrip("/") or None
    try:
        entries = list(HfApi().list_repo_tree(repo_id, path_in_repo=folder, recursive=True, expand=False,
                                              revision=revision, repo_type="dataset"))
    except Exception as exc:  # network / auth / missing repo: all reported as one actionable line
        raise _hub_error(repo_id, exc, dest_hint) from exc
    out = []
    for e in entries:
        if not hasattr(e, "size") or not fnmatch.fnmatch(e.path, glob):
            continue  # folders and unrelated files
        lfs = getattr(e, "lfs", None)
        sha = getattr(lfs, "sha256", None) if lfs is not None else None
        out.append(RemoteFile(e.path, getattr(e, "size", None), sha))
    return sorted(out, key=lambda r: r.path)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def check_downloaded(path: Path, remote: RemoteFile, checksum: bool) -> str | None:
    """None when the staged file is complete and readable, else the reason it is not."""
    size = path.stat().st_size
    if remote.size is not None and size != remote.size:
        return f"size {size} != {remote.size} on the hub"
    if checksum and remote.sha256 and _sha256(path) != remote.sha256:
        return "sha256 differs from the hub's"
    from data import libero_hdf5 as lh5

    try:
        with lh5.open_file(path) as f:
            lh5.demo_keys(f, path)
    except lh5.LiberoDataError as exc:
        return str(exc)
    return None


def download_suite(suite: str, source: str, repo_id: str, pattern: str, dest_root: Path,
                   revision: str | None = None, checksum: bool = False, progress: bool = True) -> list[Path]:
    """Download one suite; returns the files now in place. Raises HubUnavailable without network."""
    from huggingface_hub import hf_hub_download

    dest = dest_root / SOURCES[source]["dest"].format(suite=suite)
    staging = dest_root / ".staging" / repo_id.replace("/", "__")
    probe_endpoint(repo_id, str(dest))
    remote = list_remote(repo_id, suite, pattern, revision, str(dest))
    if not remote:
        raise HubUnavailable(f"no files matching {pattern.format(suite=suite)!r} in dataset repo {repo_id!r}; "
                             "check --repo_id / --pattern")
    todo = [r for r in remote if not ((dest / Path(r.path).name).is_file()
                                      and (r.size is None or (dest / Path(r.path).name).stat().st_size == r.size))]
    log.info("%s: %d files on the hub, %d already in place", suite, len(remote), len(remote) - len(todo))
    items = todo
    if progress and todo:
        from tqdm import tqdm

        items = tqdm(todo, desc=suite, unit="file")
    for r in items:
        try:
            staged = Path(hf_hub_download(repo_id, r.path, repo_type="dataset", revision=revision,
                                          local_dir=str(staging)))
        except Exception as exc:
            raise _hub_error(repo_id, exc, str(dest)) from exc
        problem = check_downloaded(staged, r, checksum)
        if problem:
            staged.unlink(missing_ok=True)  # do not resume from a bad file
            raise RuntimeError(f"{r.path}: downloaded file failed verification ({problem}); rerun to retry")
        dest.mkdir(parents=True, exist_ok=True)
        os.replace(staged, dest / Path(r.path).name)
    return [dest / Path(r.path).name for r in remote]


def lerobot_dest(dest_root: Path, repo_id: str) -> Path:
    return dest_root / LEROBOT_DEST / repo_id


def lerobot_hint(repo_id: str) -> dict[str, str]:
    """What the one-line hub error tells a LeRobot user to copy and how to check it."""
    return {"files": "the LeRobot dataset (meta/, data/, videos/)",
            "check": f"python download_libero.py --format lerobot --repo_id {repo_id} --verify"}


def verify_lerobot(folder: Path) -> str | None:
    """None when `folder` is a complete, readable LeRobot LIBERO dataset, else the reason."""
    from data import lerobot_dataset as lr
    from data.libero_hdf5 import LiberoDataError

    try:
        info = lr.verify(folder)
    except LiberoDataError as exc:
        return str(exc)
    log.info("%s: LeRobot %s, %d episodes, %d frames, %d tasks, %s cameras %s", folder, info["version"],
             info["episodes"], info["frames"], info["tasks"], info["cameras"], info["image_hw"])
    return None


def download_lerobot(repo_id: str, dest_root: Path, revision: str | None = None) -> Path:
    """Fetch a LeRobot-format dataset repo; returns its folder once verified and in place.
    Raises HubUnavailable without network, RuntimeError when the download does not verify."""
    from huggingface_hub import snapshot_download

    dest = lerobot_dest(dest_root, repo_id)
    hint = lerobot_hint(repo_id)
    if dest.exists():
        problem = verify_lerobot(dest)
        if problem is None:
            log.info("%s: already in place at %s", repo_id, dest)
            return dest
        raise RuntimeError(f"{dest} exists but is not a complete LeRobot dataset ({problem}); remove it and rerun")
    staging = dest_root / ".staging" / repo_id.replace("/", "__")
    probe_endpoint(repo_id, str(dest), **hint)
    try:
        snapshot_download(repo_id, repo_type="dataset", revision=revision, local_dir=str(staging))
    except Exception as exc:  # network / auth / missing repo: one actionable line
        raise _hub_error(repo_id, exc, str(dest), **hint) from exc
    problem = verify_lerobot(staging)
    if problem:
        raise RuntimeError(f"{repo_id}: downloaded dataset failed verification ({problem}); it stays in {staging} "
                           "(rerun to resume, or delete it to start over)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, dest)
    return dest


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
        from scripts.verify_dataset import verify_folders

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
