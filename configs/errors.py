"""User mistakes vs bugs.

Every error class that describes bad input (a config key, a data file, a checkpoint, a flag) also
derives from ``UserError``. Entry points run through ``run_cli``: a ``UserError`` (or a missing file)
ends the program with its one-line message and exit status 2; anything else is a bug and keeps its
traceback. ``RDT_DEBUG=1`` shows the traceback of user errors too.

The path checks below (``require_file``, ``require_dir``, ``output_dir``, ``output_file``) are what
every entry point uses for its path arguments, so a file given where a folder is expected (or the
other way round) is one line naming the flag.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

USER_ERROR_STATUS = 2
PathLike = Union[str, "os.PathLike[str]"]


class UserError(Exception):
    """Bad input from the user; the message names the file / flag / key and what was expected."""


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line. A DataLoader worker re-raises an exception as its class
    built from "Caught X in DataLoader worker process N. Original Traceback ...": keep only the
    original message (the traceback's last line without the class name)."""
    text = str(exc).strip()
    if text.startswith("Caught ") and "Original Traceback" in text:
        last = text.splitlines()[-1]
        name = type(exc).__name__
        head, sep, rest = last.partition(": ")
        text = rest if sep and head.split(".")[-1] == name else last
    return " ".join(text.split())


def run_cli(main: Callable[[Optional[Sequence[str]]], int], argv: Optional[Sequence[str]] = None) -> int:
    try:
        return main(argv)
    except (UserError, FileNotFoundError) as exc:
        if os.environ.get("RDT_DEBUG"):
            raise
        print(f"error: {one_line(exc)}  (RDT_DEBUG=1 shows the traceback)", file=sys.stderr)
        return USER_ERROR_STATUS


def exit_cli(main: Callable[[Optional[Sequence[str]]], int]) -> None:
    """``if __name__ == "__main__": exit_cli(main)``"""
    sys.exit(run_cli(main))


# ------------------------------------------------------------------------------------ path arguments
def require_device(device: str, what: str = "--device") -> str:
    """``device`` must name a torch device this machine has (``cpu``, ``cuda``, ``cuda:1``, ``mps``), so
    asking for CUDA on a CPU machine is one line at once, not a traceback after the model loads."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise UserError(f"{what} {device!r}: not a torch device; expected e.g. cpu, cuda, cuda:1") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"{what} {device}: this machine has no CUDA device (torch {torch.__version__}, "
                            f"cuda available: False); use {what} cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UserError(f"{what} {device}: only {torch.cuda.device_count()} CUDA device(s) here")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"{what} {device}: MPS is not available on this machine; use {what} cpu")
    return device


def require_file(path: PathLike, what: str) -> Path:
    """``path`` must be an existing file (``what``: the flag or key that named it)."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise UserError(f"{what} {p}: is a folder; expected a file")
    if not p.is_file():
        raise UserError(f"{what} {p}: file not found")
    return p


def require_dir(path: PathLike, what: str) -> Path:
    """``path`` must be an existing folder."""
    p = Path(path).expanduser()
    if p.is_file():
        raise UserError(f"{what} {p}: is a file; expected a folder")
    if not p.is_dir():
        raise UserError(f"{what} {p}: folder not found")
    return p


def _blocking_file(p: Path) -> Optional[Path]:
    """The first existing non-folder on the way to ``p`` (which then cannot be created), if any."""
    for q in [*reversed(p.parents), p]:
        if q.exists() and not q.is_dir():
            return q
    return None


def output_dir(path: PathLike, what: str, create: bool = True) -> Path:
    """A folder to write into: it may exist (as a folder) or be created with its parents."""
    p = Path(path).expanduser()
    blocker = _blocking_file(p)
    if blocker is not None:
        where = "is a file" if blocker == p else f"cannot be created: {blocker} is a file"
        raise UserError(f"{what} {p}: {where}; expected a folder")
    if create:
        try:
            p.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"{what} {p}: cannot create the folder ({exc.strerror})") from None
    return p


def output_file(path: PathLike, what: str) -> Path:
    """A file to (over)write: not a folder, and its parent folder exists or can be created."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise UserError(f"{what} {p}: is a folder; expected a file name")
    blocker = _blocking_file(p.parent)
    if blocker is not None:
        raise UserError(f"{what} {p}: cannot be created: {blocker} is a file, not a folder")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{what} {p}: cannot create its folder ({exc.strerror})") from None
    return p
