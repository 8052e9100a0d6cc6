"""Put LIBERO datasets from the Hugging Face hub in place under a dataset root, verified first.

How a file gets into place (a crash or Ctrl-C at any moment never leaves a partial file under
``<root>/<suite>/`` that looks complete):
1. the remote listing (names, sizes, LFS sha256) is read for the suite;
2. files already in place with the right size are skipped (re-running resumes);
3. each missing file is downloaded with `huggingface_hub.hf_hub_download` into the staging folder
   ``<root>/.staging/`` (the hub client itself resumes interrupted downloads there);
4. it is verified there: size equal to the hub's, sha256 with ``checksum``, and it opens as a LIBERO
   HDF5 file with demos;
5. only then it is renamed into ``<root>/<dest>/`` (same filesystem: an atomic rename).

A LeRobot dataset repo (all its suites; data/, meta/, videos/) is fetched with
`huggingface_hub.snapshot_download` into the staging folder (resumable), verified there
(`data.lerobot_dataset.verify`) and renamed into ``<root>/lerobot/<owner>/<name>/``.
``download_libero.py`` is the CLI.
"""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from data import hub
from data import libero_hdf5 as lh5
from data.hub import HubUnavailable, RemoteFile, hub_error, lerobot_hint

log = logging.getLogger(__name__)

# Where each source lives on the hub, which files belong to a suite, and the local folder name.
# The official raw files (LIBERO's create_dataset layout, 128x128) are in the dataset repo
# yifengzhu-hf/LIBERO-datasets, one folder per suite. No-noops HDF5 files (OpenVLA's regeneration,
# 256x256) have no official hub repo: pass the one you use as repo_id.
SOURCES = {
    "raw": {"repo_id": "yifengzhu-hf/LIBERO-datasets", "pattern": "{suite}/*.hdf5", "dest": "{suite}"},
    "no_noops": {"repo_id": None, "pattern": "{suite}_no_noops/*.hdf5", "dest": "{suite}_no_noops"},
}
# LeRobot-format LIBERO (openpi's examples/libero/convert_libero_data_to_lerobot.py): openpi's conversion of the
# four no-noops suites (v2.0, PNG); the LeRobot team's HuggingFaceVLA/libero and lerobot/libero (v3.0) also read.
LEROBOT_DEFAULT_REPO = "physical-intelligence/libero"
LEROBOT_DEST = "lerobot"  # <root>/lerobot/<owner>/<name>


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
    hub.probe_endpoint(repo_id, str(dest))
    remote = hub.list_remote(repo_id, suite, pattern, revision, str(dest))
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
            raise hub_error(repo_id, exc, str(dest)) from exc
        problem = check_downloaded(staged, r, checksum)
        if problem:
            staged.unlink(missing_ok=True)  # do not resume from a bad file
            raise RuntimeError(f"{r.path}: downloaded file failed verification ({problem}); rerun to retry")
        dest.mkdir(parents=True, exist_ok=True)
        os.replace(staged, dest / Path(r.path).name)
    return [dest / Path(r.path).name for r in remote]


def lerobot_dest(dest_root: Path, repo_id: str) -> Path:
    return dest_root / LEROBOT_DEST / repo_id


def verify_lerobot(folder: Path) -> str | None:
    """None when `folder` is a complete, readable LeRobot LIBERO dataset, else the reason."""
    from data import lerobot_dataset as lr

    try:
        info = lr.verify(folder)
    except lh5.LiberoDataError as exc:
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
    hub.probe_endpoint(repo_id, str(dest), **hint)
    try:
        snapshot_download(repo_id, repo_type="dataset", revision=revision, local_dir=str(staging))
    except Exception as exc:  # network / auth / missing repo: one actionable line
        raise hub_error(repo_id, exc, str(dest), **hint) from exc
    problem = verify_lerobot(staging)
    if problem:
        raise RuntimeError(f"{repo_id}: downloaded dataset failed verification ({problem}); it stays in {staging} "
                           "(rerun to resume, or delete it to start over)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, dest)
    return dest
