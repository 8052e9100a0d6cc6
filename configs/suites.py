"""The LIBERO suite names and the one check of a suite name, wherever it comes from (a flag, a file,
a caller), so that every layer refuses an unknown suite with the same one-line message."""
from __future__ import annotations

from typing import Any, Optional

from configs.errors import UserError

LIBERO_SUITES: tuple[str, ...] = ("libero_spatial", "libero_object", "libero_goal", "libero_10", "libero_90")


class UnknownSuiteError(UserError, ValueError):
    """Not one of LIBERO_SUITES (a ValueError too: callers that caught ValueError still do)."""


def check_suite(name: Any, where: Optional[str] = None) -> str:
    """``name`` when it is a LIBERO suite; else UnknownSuiteError naming ``where`` (flag or file) and the valid suites."""
    if isinstance(name, str) and name in LIBERO_SUITES:
        return name
    prefix = f"{where}: " if where else ""
    raise UnknownSuiteError(f"{prefix}unknown LIBERO suite {name!r}; valid suites: {', '.join(LIBERO_SUITES)}")
