"""Talking to the Hugging Face hub: one actionable line for any failure, a fast reachability probe,
a suite's remote file listing and a dataset snapshot.

Used by `data.download` (putting suites in place) and `data.lerobot_dataset` (a suite whose path is
a hub id). Without network every failure is `HubUnavailable` (or, for a dataset read, a
`LiberoDataError`) naming the repository and what to do: copy the files by hand, or set
HF_ENDPOINT to a reachable mirror.
"""
from __future__ import annotations

import fnmatch
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from data.libero_hdf5 import LiberoDataError


class HubUnavailable(RuntimeError):
    """The hub (or the repo) cannot be reached; the message says what to do."""


@dataclass
class RemoteFile:
    path: str  # path inside the repo
    size: int | None
    sha256: str | None


def hub_error(repo_id: str, exc: BaseException, dest_hint: str, files: str = "the suite's *.hdf5 files",
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


def lerobot_hint(repo_id: str) -> dict[str, str]:
    """What the one-line hub error tells a LeRobot user to copy and how to check it."""
    return {"files": "the LeRobot dataset (meta/, data/, videos/)",
            "check": f"python download_libero.py --format lerobot --repo_id {repo_id} --verify"}


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
        raise hub_error(repo_id, exc, dest_hint, **hint) from exc


def list_remote(repo_id: str, suite: str, pattern: str, revision: str | None, dest_hint: str) -> list[RemoteFile]:
    """Files of one suite in the hub repo (name, size, sha256)."""
    from huggingface_hub import HfApi

    glob = pattern.format(suite=suite)
    folder = glob.split("*")[0].rstrip("/") or None
    try:
        entries = list(HfApi().list_repo_tree(repo_id, path_in_repo=folder, recursive=True, expand=False,
                                              revision=revision, repo_type="dataset"))
    except Exception as exc:  # network / auth / missing repo: all reported as one actionable line
        raise hub_error(repo_id, exc, dest_hint) from exc
    out = []
    for e in entries:
        if not hasattr(e, "size") or not fnmatch.fnmatch(e.path, glob):
            continue  # folders and unrelated files
        lfs = getattr(e, "lfs", None)
        sha = getattr(lfs, "sha256", None) if lfs is not None else None
        out.append(RemoteFile(e.path, getattr(e, "size", None), sha))
    return sorted(out, key=lambda r: r.path)


def fetch_hub_dataset(repo_id: str, revision: str | None = None, local_dir: str | Path | None = None) -> Path:
    """``snapshot_download`` of a hub dataset repo -> local folder; ``LiberoDataError`` (one line) when
    the hub cannot be reached and the repo is not in the local cache."""
    from huggingface_hub import snapshot_download

    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")
    where = (f"a folder and make it the suite's 'path' (or run `python download_libero.py --format lerobot "
             f"--repo_id {repo_id}` where the hub is reachable)")
    hint = lerobot_hint(repo_id)
    try:
        if not offline:
            probe_endpoint(repo_id, where, **hint)
        out = snapshot_download(repo_id, repo_type="dataset", revision=revision,
                                local_dir=str(local_dir) if local_dir else None)
    except HubUnavailable as exc:
        raise LiberoDataError(repo_id, str(exc)) from None
    except Exception as exc:  # network / auth / missing repo / not in the offline cache
        raise LiberoDataError(repo_id, str(hub_error(repo_id, exc, where, **hint))) from None
    return Path(out)
