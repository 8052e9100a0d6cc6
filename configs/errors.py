"""User mistakes vs bugs.

Every error class that describes bad input (a config key, a data file, a checkpoint, a flag) also
derives from ``UserError``. Entry points run through ``run_cli``: a ``UserError`` (or a missing file)
ends the program with its one-line message and exit status 2; anything else is a bug and keeps its
traceback. ``RDT_DEBUG=1`` shows the traceback of user errors too.
"""
from __future__ import annotations

import os
import sys
from typing import Callable, Optional, Sequence

USER_ERROR_STATUS = 2


class UserError(Exception):
    """Bad input from the user; the message names the file / flag / key and what was expected."""


def run_cli(main: Callable[[Optional[Sequence[str]]], int], argv: Optional[Sequence[str]] = None) -> int:
    try:
        return main(argv)
    except (UserError, FileNotFoundError) as exc:
        if os.environ.get("RDT_DEBUG"):
            raise
        print(f"error: {exc}  (RDT_DEBUG=1 shows the traceback)", file=sys.stderr)
        return USER_ERROR_STATUS


def exit_cli(main: Callable[[Optional[Sequence[str]]], int]) -> None:
    """``if __name__ == "__main__": exit_cli(main)``"""
    sys.exit(run_cli(main))
