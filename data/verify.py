"""Verify LIBERO HDF5 dataset folders (downloaded or simulator-made) and summarise them per suite.

Checks per file, through `data.libero_hdf5` (errors name the file and HDF5 key):
- opens as HDF5 with a ``data`` group and ``demo_N`` groups; ``problem_info`` has an instruction;
- per demo: actions / ee_pos / ee_ori / gripper_states (+ joint_states, states, robot_states,
  rewards, dones) present, all the same length, no NaN/inf; images (T, H, W, 3) uint8;
- ``num_samples`` / ``num_demos`` / ``total`` attributes consistent with the arrays, when present;
- time alignment, measured rather than assumed: the robot joint positions ``obs/joint_states[t]``
  are compared with those stored in ``states`` (mujoco qpos, robot joints first: ``states[:, 1:8]``).
  Closer to ``states[t+1]`` -> raw layout (obs after the action); closer to ``states[t]`` ->
  no-noops layout (obs before the action). A file whose declared layout (``data.attrs['layout']``
  or image size) contradicts the measurement is an error.

CLIs: ``python -m scripts.verify_dataset`` and ``python download_libero.py --verify``.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import h5py
import numpy as np

from data import libero_hdf5 as lh5

ROBOT_QPOS = slice(1, 8)  # states = [sim time, qpos..., qvel...]; the Panda's 7 joints come first
EXTRA_KEYS = {"states": None, "robot_states": 9, "rewards": None, "dones": None}


@dataclass
class FileReport:
    path: Path
    demos: int = 0
    steps: int = 0
    instruction: str | None = None
    layout: str | None = None  # declared (attr / image size)
    measured: str | None = None  # from the state/obs alignment
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def measure_alignment(states: np.ndarray, joints: np.ndarray) -> str | None:
    """'raw' if obs joints[t] match states[t+1], 'no_noops' if they match states[t]; None if unclear."""
    if len(states) < 3 or states.shape[1] < ROBOT_QPOS.stop:
        return None
    q = states[:, ROBOT_QPOS]
    after = np.median(np.abs(joints[:-1] - q[1:]).max(axis=1))
    before = np.median(np.abs(joints[1:] - q[1:]).max(axis=1))  # skip t=0 (OpenVLA stores the pre-settle state)
    if min(after, before) > 0.05 or abs(after - before) < 1e-6:
        return None
    return "raw" if after < before else "no_noops"


def _check_extra(f: h5py.File, path: Path, demo: str, t: int) -> np.ndarray | None:
    """States & friends: present, right length, finite. Returns states (or None if missing)."""
    states = None
    for key, width in EXTRA_KEYS.items():
        full = f"data/{demo}/{key}"
        if key not in f[f"data/{demo}"]:
            raise lh5.LiberoDataError(path, "missing key", key=full)
        ds = f[full]
        if ds.shape[0] != t:
            raise lh5.LiberoDataError(path, f"length {ds.shape[0]} != {t} steps of actions", key=full)
        if width is not None and (ds.ndim != 2 or ds.shape[1] != width):
            raise lh5.LiberoDataError(path, f"expected shape (T, {width}), got {ds.shape}", key=full)
        try:
            arr = ds[()]
        except OSError as exc:
            raise lh5.LiberoDataError(path, f"cannot read (truncated or corrupt file?): {exc}", key=full) from None
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            raise lh5.LiberoDataError(path, "NaN/inf values", key=full)
        if key == "states":
            states = arr
    n = f[f"data/{demo}"].attrs.get("num_samples")
    if n is not None and int(n) != t:
        raise lh5.LiberoDataError(path, f"num_samples={int(n)} but {t} steps", key=f"data/{demo}.attrs['num_samples']")
    return states


def verify_file(path: str | Path, check_alignment: bool = True) -> FileReport:
    path = Path(path)
    rep = FileReport(path)
    try:
        with lh5.open_file(path) as f:
            demos = lh5.demo_keys(f, path)
            rep.instruction = lh5.read_instruction(f, path)
            rep.layout = lh5.detect_layout(f, path)
            votes = []
            for demo in demos:
                low = lh5.read_demo_lowdim(f, path, demo, need_joints=True)
                states = _check_extra(f, path, demo, len(low))
                rep.demos += 1
                rep.steps += len(low)
                if check_alignment:
                    votes.append(measure_alignment(states, low.joints))
            for name, value in (("num_demos", rep.demos), ("total", rep.steps)):
                attr = f["data"].attrs.get(name)
                if attr is not None and int(attr) != value:
                    rep.errors.append(f"{path} [data.attrs['{name}']]: {int(attr)} but the file has {value}")
            votes = [v for v in votes if v]
            if votes:
                rep.measured = max(set(votes), key=votes.count)
                if rep.measured != rep.layout:
                    rep.errors.append(
                        f"{path}: declared layout {rep.layout!r} but obs/state alignment says {rep.measured!r} "
                        "(raw: obs recorded after each action; no_noops: before)"
                    )
    except lh5.LiberoDataError as exc:
        rep.errors.append(str(exc))
    except (OSError, KeyError, ValueError, TypeError) as exc:  # anything else h5py may throw on a damaged file
        rep.errors.append(f"{path}: {type(exc).__name__}: {exc}")
    return rep


def suite_folders(root: str | Path) -> list[Path]:
    """Sub-folders of `root` that hold .hdf5 files (staging/hidden folders excluded)."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and any(p.glob("*.hdf5")))


def verify_folder(folder: str | Path, check_alignment: bool = True) -> list[FileReport]:
    folder = Path(folder)
    try:
        files = lh5.list_suite_files(folder)
    except lh5.LiberoDataError as exc:
        rep = FileReport(folder)
        rep.errors.append(str(exc))
        return [rep]
    return [verify_file(p, check_alignment) for p in files]


def summarize(results: dict[str, list[FileReport]]) -> str:
    """Per-suite table: files, demos, steps, distinct instructions, layout, errors."""
    head = f"{'suite':<24} {'files':>5} {'demos':>6} {'steps':>8} {'instr.':>6} {'layout':<16} {'errors':>6}"
    lines = [head, "-" * len(head)]
    for suite, reps in results.items():
        good = [r for r in reps if r.ok]
        layouts = sorted({(r.measured or r.layout or "?") for r in good})
        n_files = sum(1 for r in reps if r.path.suffix == ".hdf5")
        lines.append(
            f"{suite:<24} {n_files:>5} {sum(r.demos for r in good):>6} {sum(r.steps for r in good):>8} "
            f"{len({r.instruction for r in good}):>6} {','.join(layouts) or '-':<16} {sum(len(r.errors) for r in reps):>6}"
        )
    return "\n".join(lines)


def verify_folders(targets: Iterable[str | Path], check_alignment: bool = True, out=None) -> bool:
    """Verify suite folders (and/or single files), print errors and the summary table; True if all fine."""
    out = out or sys.stdout
    results: dict[str, list[FileReport]] = {}
    for target in map(Path, targets):
        key = target.name if target.name not in results else str(target)
        if target.is_file():
            results.setdefault("(files)", []).append(verify_file(target, check_alignment))
        else:
            results[key] = verify_folder(target, check_alignment)
    ok = True
    for reps in results.values():
        for r in reps:
            for err in r.errors:
                print(f"ERROR {err}", file=out)
                ok = False
    print(summarize(results), file=out)
    return ok
