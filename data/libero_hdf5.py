"""Opening and validating LIBERO demonstration HDF5 files (one file per task).

File layout (LIBERO's ``scripts/create_dataset.py``, github.com/Lifelong-Robot-Learning/LIBERO): ``data/demo_N/{actions (T,7),
obs/{agentview_rgb, eye_in_hand_rgb (T,H,W,3) uint8, ee_pos (T,3), ee_ori (T,3) axis-angle,
gripper_states (T,2), joint_states (T,7)}}`` plus ``data.attrs`` ``problem_info`` / ``env_args`` JSON.

Two time alignments exist and must not be mixed up:
- ``raw`` (official release and ``scripts/make_demo_dataset.py``): ``obs[t]`` is observed AFTER
  ``actions[t]``, so the observation that preceded ``actions[t]`` is ``obs[t-1]`` and ``actions[0]``
  has none (it cannot start a sample).
- ``no_noops`` (OpenVLA's regenerated 256x256 files): ``obs[t]`` is observed BEFORE ``actions[t]``.
``obs_offset(layout)`` gives the shift: the observation preceding ``actions[t]`` is ``obs[t - offset]``.

Every problem is reported as ``LiberoDataError`` naming the file and the HDF5 key, so a bad download
never surfaces as a bare traceback from inside h5py.
"""
from __future__ import annotations

import functools
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import h5py
import numpy as np

from configs.errors import UserError
from configs.schema import INSTRUCTION_ALIASES, INSTRUCTION_SOURCES  # noqa: F401 (re-exported)
from configs.suites import LIBERO_SUITES
from policy.libero_mapping import OscScale, libero_image_to_view

log = logging.getLogger(__name__)

LAYOUTS = ("raw", "no_noops")
LAYOUT_CHOICES = LAYOUTS + ("auto",)


def resolve_instruction_source(source: str) -> str:
    """``file`` -> ``problem_info``; raises ValueError for an unknown source."""
    source = INSTRUCTION_ALIASES.get(source, source)
    if source not in INSTRUCTION_SOURCES:
        raise ValueError(f"unknown instruction source {source!r}; expected one of {INSTRUCTION_SOURCES} "
                         f"(or the alias 'file')")
    return source
IMAGE_KEYS = ("obs/agentview_rgb", "obs/eye_in_hand_rgb")  # -> cam_high, right_wrist slots
LOWDIM_KEYS = {"actions": 7, "obs/ee_pos": 3, "obs/ee_ori": 3, "obs/gripper_states": 2}
JOINT_KEY = "obs/joint_states"
_DEMO_RE = re.compile(r"^demo_(\d+)$")


class LiberoDataError(UserError, ValueError):
    """Bad or missing LIBERO data; the message names the file (and HDF5 key when there is one)."""

    def __init__(self, path: str | Path, message: str | None = None, key: str | None = None):
        if message is None:  # one string: how a DataLoader worker's exception is re-raised (its text)
            self.path, self.key = "", None
            super().__init__(str(path))
            return
        self.path = str(path)
        self.key = key
        where = f"{self.path}" + (f" [{key}]" if key else "")
        super().__init__(f"{where}: {message}")


def obs_offset(layout: str) -> int:
    """1 for ``raw`` (obs[t-1] precedes actions[t]), 0 for ``no_noops``."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {LAYOUTS}")
    return 1 if layout == "raw" else 0


def list_suite_files(folder: str | Path) -> list[Path]:
    """All ``*.hdf5`` files of a suite folder, sorted by name (deterministic index order)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise LiberoDataError(folder, "dataset folder not found (download it with download_libero.py, "
                              "or fix 'path' in configs/finetune_datasets.json)")
    files = sorted(p for p in folder.iterdir() if p.suffix == ".hdf5" and p.is_file())
    if not files:
        raise LiberoDataError(folder, "no .hdf5 files in this suite folder")
    return files


def open_file(path: str | Path) -> h5py.File:
    """Open read-only; a truncated/corrupt file or a file without ``data`` -> ``LiberoDataError``."""
    try:
        f = h5py.File(path, "r")
    except FileNotFoundError:
        raise LiberoDataError(path, "file not found (deleted or moved? if the dataset changed, the next run "
                              "re-indexes it)") from None
    except IsADirectoryError:
        raise LiberoDataError(path, "is a folder; expected an HDF5 file") from None
    except (OSError, ValueError) as e:
        if not Path(path).exists():
            raise LiberoDataError(path, "file not found (deleted or moved? if the dataset changed, the next "
                                  "run re-indexes it)") from None
        raise LiberoDataError(path, f"cannot open as HDF5 (truncated or corrupt download?): {e}") from None
    if "data" not in f or not isinstance(f["data"], h5py.Group):
        f.close()
        raise LiberoDataError(path, "missing group", key="data")
    return f


def demo_keys(f: h5py.File, path: str | Path) -> list[str]:
    """``demo_N`` keys sorted numerically (demo_2 before demo_10, unlike h5py's order)."""
    keys = [k for k in f["data"].keys() if _DEMO_RE.match(k)]
    if not keys:
        raise LiberoDataError(path, "no demo_N groups", key="data")
    return sorted(keys, key=lambda k: int(_DEMO_RE.match(k).group(1)))


def _attr_str(f: h5py.File, name: str) -> str | None:
    v = f["data"].attrs.get(name)
    if v is None:
        return None
    return v.decode() if isinstance(v, bytes) else str(v)


def read_osc_scale(f: h5py.File, path: str | Path) -> OscScale:
    """Controller scale from ``data.attrs['env_args']`` (defaults 0.05 m / 0.5 rad when absent)."""
    try:
        return OscScale.from_env_args(_attr_str(f, "env_args"))
    except (ValueError, TypeError, AttributeError) as e:
        raise LiberoDataError(path, f"bad controller config: {e}", key="data.attrs['env_args']") from None


def detect_layout(f: h5py.File, path: str | Path, requested: str = "auto") -> str:
    """Resolve ``auto``: ``data.attrs['layout']`` if a writer set it, else image size (256 -> no_noops,
    128 -> raw, anything else is ambiguous and must be configured)."""
    if requested not in LAYOUT_CHOICES:
        raise ValueError(f"unknown layout {requested!r}; expected one of {LAYOUT_CHOICES}")
    if requested != "auto":
        return requested
    attr = _attr_str(f, "layout")
    if attr in LAYOUTS:
        log.info("%s: layout %s (from data.attrs['layout'])", path, attr)
        return attr
    demo = demo_keys(f, path)[0]
    key = f"data/{demo}/{IMAGE_KEYS[0]}"
    if key not in f:
        raise LiberoDataError(path, "missing key (needed to detect the layout)", key=key)
    h = f[key].shape[1]
    if h in (128, 256):
        layout = "raw" if h == 128 else "no_noops"
        log.info("%s: layout %s (auto, %dx%d images)", path, layout, h, h)
        return layout
    raise LiberoDataError(path, f"cannot auto-detect layout from {h}px images; set 'layout' to raw or "
                          "no_noops for this suite in finetune_datasets.json", key=key)


def instruction_from_filename(path: str | Path) -> str:
    """``KITCHEN_SCENE3_turn_on_the_stove_demo.hdf5`` -> ``turn on the stove`` (LIBERO's own rule)."""
    stem = Path(path).stem
    stem = stem[:-5] if stem.endswith("_demo") else stem
    m = re.search(r"SCENE\d+_", stem)
    if m:
        stem = stem[m.end():]
    return stem.replace("_", " ").strip()


@functools.lru_cache(maxsize=1)
def _benchmark_languages() -> dict[str, str]:
    """Task name -> benchmark language over all LIBERO suites (needs the ``libero`` package)."""
    from libero.libero import benchmark  # imported lazily: heavy, and absent on some machines

    out: dict[str, str] = {}
    table = benchmark.get_benchmark_dict()
    # Only the standard suites: packaged variants (e.g. LIBERO-PRO's *_lan) reuse task names with
    # paraphrased language.
    for name in LIBERO_SUITES:
        if name not in table:
            continue
        suite = table[name]()
        for i in range(suite.n_tasks):
            task = suite.get_task(i)
            out[task.name] = task.language
    return out


def read_instruction(f: h5py.File, path: str | Path, source: str = "problem_info") -> str:
    """The task's language instruction.

    ``problem_info`` (default): ``data.attrs['problem_info'].language_instruction`` (the bddl text,
    what LIBERO's env exposes as ``env.language_instruction``); ``benchmark``: the benchmark's task
    language (can differ: "pick the ..." vs "pick up the ..."; needs LIBERO importable);
    ``filename``: derived from the file name. Evaluation must use the same source.
    """
    source = resolve_instruction_source(source)
    if source == "filename":
        return instruction_from_filename(path)
    if source == "benchmark":
        stem = Path(path).stem
        name = stem[:-5] if stem.endswith("_demo") else stem
        try:
            langs = _benchmark_languages()
        except Exception as e:  # ImportError or LIBERO's own setup errors
            raise LiberoDataError(path, f"instruction_source=benchmark needs the libero package: {e}") from None
        if name not in langs:
            raise LiberoDataError(path, f"task {name!r} is not a LIBERO benchmark task")
        return langs[name]
    raw = _attr_str(f, "problem_info")
    if raw is None:
        raise LiberoDataError(path, "missing attribute", key="data.attrs['problem_info']")
    try:
        text = json.loads(raw)["language_instruction"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise LiberoDataError(path, f"no language_instruction ({e!r})", key="data.attrs['problem_info']") from None
    return " ".join(str(text).split())


@dataclass
class DemoLowDim:
    """Low-dimensional arrays of one demo (all float64, length T)."""

    actions: np.ndarray  # (T, 7)
    ee_pos: np.ndarray  # (T, 3)
    ee_ori: np.ndarray  # (T, 3) axis-angle
    gripper: np.ndarray  # (T, 2) finger qpos
    joints: np.ndarray | None  # (T, 7) or None when not requested

    def __len__(self) -> int:
        return len(self.actions)


def _dataset(f: h5py.File, path: str | Path, key: str) -> h5py.Dataset:
    if key not in f:
        raise LiberoDataError(path, "missing key", key=key)
    obj = f[key]
    if not isinstance(obj, h5py.Dataset):
        raise LiberoDataError(path, "expected a dataset, found a group", key=key)
    return obj


def _read(f: h5py.File, path: str | Path, key: str, width: int) -> np.ndarray:
    ds = _dataset(f, path, key)
    if ds.ndim != 2 or ds.shape[1] != width:
        raise LiberoDataError(path, f"expected shape (T, {width}), got {ds.shape}", key=key)
    try:
        arr = ds[()].astype(np.float64)
    except OSError as e:  # truncated file: the header opens but the data is gone
        raise LiberoDataError(path, f"cannot read (truncated or corrupt file?): {e}", key=key) from None
    bad = ~np.isfinite(arr)
    if bad.any():
        t = int(np.argwhere(bad)[0, 0])
        raise LiberoDataError(path, f"NaN/inf values (first at step {t})", key=key)
    return arr


def read_demo_lowdim(f: h5py.File, path: str | Path, demo: str, need_joints: bool = False) -> DemoLowDim:
    """Read and validate one demo's actions and proprio; checks images exist with matching length.

    Raises ``LiberoDataError`` for missing keys, wrong shapes, NaN/inf and mismatched lengths.
    """
    base = f"data/{demo}"
    arrs = {k: _read(f, path, f"{base}/{k}", w) for k, w in LOWDIM_KEYS.items()}
    joints = _read(f, path, f"{base}/{JOINT_KEY}", 7) if need_joints else None
    t = len(arrs["actions"])
    if t == 0:
        raise LiberoDataError(path, "empty demo (0 steps)", key=f"{base}/actions")
    lengths = {k: len(v) for k, v in arrs.items()}
    if joints is not None:
        lengths[JOINT_KEY] = len(joints)
    for key in IMAGE_KEYS:
        ds = _dataset(f, path, f"{base}/{key}")
        if ds.ndim != 4 or ds.shape[-1] != 3 or ds.dtype != np.uint8:
            raise LiberoDataError(path, f"expected (T, H, W, 3) uint8 images, got {ds.shape} {ds.dtype}",
                                  key=f"{base}/{key}")
        lengths[key] = ds.shape[0]
    for key, n in lengths.items():
        if n != t:
            raise LiberoDataError(path, f"length {n} != {t} steps of actions", key=f"{base}/{key}")
    return DemoLowDim(arrs["actions"], arrs["obs/ee_pos"], arrs["obs/ee_ori"], arrs["obs/gripper_states"], joints)


def image_shape(f: h5py.File, demo: str) -> tuple[int, int]:
    """(H, W) of a demo's agentview images."""
    return tuple(f[f"data/{demo}/{IMAGE_KEYS[0]}"].shape[1:3])


def read_images(f: h5py.File, path: str | Path, demo: str, key: str, idx: Iterable[int]) -> np.ndarray:
    """Frames ``idx`` (any order, repeats allowed) of one camera -> (len(idx), H, W, 3) uint8, as stored."""
    idx = np.asarray(list(idx), dtype=np.int64)
    lo, hi = int(idx.min()), int(idx.max()) + 1
    full = f"data/{demo}/{key}"
    try:
        block = f[full][lo:hi]  # one contiguous read, then gather
    except (OSError, KeyError) as e:
        raise LiberoDataError(path, f"cannot read images: {e}", key=full) from None
    return block[idx - lo]


# ------------------------------------------------------------------------------------ reader
CAMERA_ROLES = ("agentview", "wrist")  # -> cam_high, right_wrist slots (left_wrist: no camera)
ROLE_IMAGE_KEYS = dict(zip(CAMERA_ROLES, IMAGE_KEYS))


class Hdf5Libero:
    """One LIBERO HDF5 file, read through the interface of ``data.lerobot_dataset.LeRobotLibero``
    (``lowdim``, ``frames``, ``images``, ``close``), so ``LiberoDataset`` reads both formats alike.

    Args:
        path: the ``.hdf5`` file. need_joints: also read ``obs/joint_states`` into ``DemoLowDim.joints``.
    The h5py handle is opened on first use in each process (a forked DataLoader worker must not
    share its parent's) and dropped when the reader is pickled.
    """

    def __init__(self, path: str | Path, need_joints: bool = False):
        self.path = Path(path)
        self.need_joints = need_joints
        self._f: h5py.File | None = None
        self._pid: int | None = None

    def _file(self) -> h5py.File:
        pid = os.getpid()
        if self._f is None or self._pid != pid:
            self._f, self._pid = open_file(self.path), pid
        return self._f

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_f": None, "_pid": None}

    def close(self) -> None:
        if self._f is not None and self._pid == os.getpid():
            self._f.close()
        self._f, self._pid = None, None

    def lowdim(self, key: str) -> DemoLowDim:
        """One demo's actions and proprio, validated (float64, length T)."""
        return read_demo_lowdim(self._file(), self.path, key, self.need_joints)

    def frames(self, key: str, role: str, idx: Iterable[int]) -> np.ndarray:
        """Frames ``idx`` (any order, repeats allowed) of one camera role (``agentview`` / ``wrist``) of
        one demo -> (len(idx), H, W, 3) uint8, as stored (LIBERO's upside-down render)."""
        return read_images(self._file(), self.path, key, ROLE_IMAGE_KEYS[role], idx)

    def images(self, key: str, role: str, idx: Iterable[int], view: str) -> np.ndarray:
        """``frames`` turned into the model's ``view`` (``policy.libero_mapping.IMAGE_VIEWS``)."""
        return libero_image_to_view(self.frames(key, role, idx), view)
