"""Atomic file writes: a reader (or a rerun after a crash) sees the old file or the new one, never a
half-written one.

The temp file sits next to the target (``os.replace`` is atomic only within one filesystem) and is
named ``.<name>.<pid>.<random>.tmp``: hidden, unique per writer, and never matched by a reader's
``*.hdf5`` / ``*.json`` glob. Before the rename it gets the mode a plain ``open()`` would have given
(``0666 & ~umask``: 0644 under the usual umask), whatever the writer used: some libraries create their
file 0600 (safetensors), which would hide checkpoints from the other users of a shared cluster.
"""
from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional, Union

PathLike = Union[str, "os.PathLike[str]"]


def current_umask() -> int:
    """The process umask, read without changing it (``/proc``), else by setting and restoring it."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def set_default_mode(path: PathLike) -> None:
    """Give ``path`` the mode ``open()`` creates files with (``0666 & ~umask``)."""
    os.chmod(path, 0o666 & ~current_umask())


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: PathLike, *, fsync: bool = False, mode: Optional[int] = None) -> Iterator[Path]:
    """Yield a temp path for writers that need a path (h5py, csv, ...); on normal exit it replaces
    ``path``, on an exception it is removed.

    A body that leaves no file there (never wrote one, or deleted it) leaves ``path`` untouched.
    ``fsync``: the data reaches the disk before the rename (a crash right after keeps the new file).
    ``mode``: the file's permissions (default: ``0666 & ~umask``, as ``open()`` would create it).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        yield tmp
        if tmp.exists():
            if fsync:
                _fsync(tmp)
            if tmp.is_file():
                os.chmod(tmp, mode) if mode is not None else set_default_mode(tmp)
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: PathLike, data: bytes, *, fsync: bool = False) -> None:
    with atomic_path(path, fsync=fsync) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: PathLike, text: str, *, encoding: str = "utf-8", fsync: bool = False) -> None:
    """``text`` is written as given (no newline translation)."""
    with atomic_path(path, fsync=fsync) as tmp:
        with open(tmp, "w", encoding=encoding, newline="") as f:
            f.write(text)
