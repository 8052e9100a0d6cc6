"""``LiberoDataset``: every usable timestep of every LIBERO demo is one training sample.

The user's original loader drew a random file -> demo -> step per call and ignored the index, so an
"epoch" saw ~30% of the data and nothing was reproducible. Here an index of (file, demo, step) is
built once per suite (validated, cached on disk next to the data), ``len()`` is the number of
usable steps, ``__getitem__(i)`` is a pure function of ``i`` and the DataLoader does the shuffling
(``train.sampler.EpochSampler``: permutations, or weighted draws when suites are weighted).

Timeline of one sample (step ``k`` = index of the chunk's first action, C = action_chunk_size)::

    raw layout:       obs[k-2]  obs[k-1] | actions[k] ... actions[k+C-1]
    no_noops layout:  obs[k-1]  obs[k]   | actions[k] ... actions[k+C-1]
                      `---- history ---'   state = the last history obs (the pose before actions[k])

Raw files have no observation before ``actions[0]``, so their usable steps are 1..T-1 (T-1 samples
per demo); no_noops files use 0..T-1 (T samples). History frames before the demo start repeat the
first frame with image mask False; chunks running past the end repeat the last action with
``action_valid`` False (short episodes are therefore fine).

Geometry and options come from the typed config (``configs/schema.py``: ``common`` and ``dataset``
sections) via ``DataConfig.from_config``; suites from ``configs/finetune_datasets.json``.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence

import numpy as np
from torch.utils.data import Dataset

from configs.schema import CommonConfig, Config, DatasetConfig
from data import libero_hdf5 as lh
from data import lerobot_dataset as lr
from policy.batch import SAMPLE
from policy.lang_embeddings import LangEmbeddingStore
from data.libero_hdf5 import LiberoDataError
from policy.libero_mapping import (
    OscScale,
    Pose,
    action_mask,
    encode_actions,
    encode_state,
    hold_action,
    noop_mask,
)
from policy.observation import camera_slot_images, history_indices
from utils.atomic import atomic_path

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATASETS_JSON = REPO_ROOT / "configs" / "finetune_datasets.json"
INDEX_VERSION = 1
FORMATS = ("hdf5", lr.FORMAT)  # the keys of READERS and INDEXERS


# ------------------------------------------------------------------------------------- configs
@dataclass(frozen=True)
class DataConfig:
    """The dataset's part of the typed config (validated by ``configs.schema``, where every option
    is documented): ``common`` (img_history_size, action_chunk_size, ...) and ``dataset``
    (action_encoding, use_joint_state, control_freq, filter_noops, instruction_source,
    val_fraction, datasets_config, image_view, ...). Build it with ``from_config``."""

    common: CommonConfig
    dataset: DatasetConfig

    @classmethod
    def from_config(cls, config: Config) -> "DataConfig":
        """The ``common`` and ``dataset`` sections of a typed config (a preset: ``configs.loader.load_typed``;
        a partial dict, e.g. an old checkpoint's: ``configs.loader.fill_from_base``)."""
        if not isinstance(config, Config):
            raise TypeError(f"DataConfig.from_config takes a configs.schema.Config, got {type(config).__name__} "
                            "(build one with configs.loader.load_typed or fill_from_base)")
        return cls(config.common, config.dataset)


@dataclass(frozen=True)
class SuiteSpec:
    """One entry of ``finetune_datasets.json``: ``{"<name>": {"path", "sample_weight", "layout", ...}}``.

    ``"format": "lerobot"`` reads a LeRobot dataset folder or hub id (``data/lerobot_dataset.py``;
    its extra keys end up in ``options``); the default format is ``hdf5``."""

    name: str
    path: Path
    sample_weight: float = 1.0
    layout: str = "auto"
    instruction_source: str | None = None  # overrides dataset.instruction_source
    format: str = "hdf5"
    options: Mapping[str, Any] = field(default_factory=dict, compare=False)


HDF5_ENTRY_KEYS = ("path", "sample_weight", "layout", "instruction_source", "format")


def _read_suites_table(datasets: str | Path | Mapping[str, Any]) -> tuple[dict, str]:
    """(the table, its name for messages): a JSON object of suite entries."""
    if isinstance(datasets, Mapping):
        return dict(datasets), "<dict>"
    p = Path(datasets)
    if p.is_dir():
        raise LiberoDataError(p, "is a folder; expected the datasets config JSON file (configs/finetune_datasets.json)")
    if not p.is_file():
        raise LiberoDataError(p, "datasets config not found")
    try:
        table = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise LiberoDataError(p, f"invalid JSON: {e}") from None
    if not isinstance(table, dict):
        raise LiberoDataError(p, f"expected a JSON object {{suite name: {{\"path\": ...}}}} at the top level, got "
                              f"{type(table).__name__}")
    return table, str(p)


def _check_entry_keys(entry: Mapping[str, Any], src: str, name: str) -> None:
    """An hdf5 entry holds only the known keys (a misspelled one is refused with the closest)."""
    import difflib

    for key in entry:
        if key not in HDF5_ENTRY_KEYS:
            close = difflib.get_close_matches(str(key), HDF5_ENTRY_KEYS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {list(HDF5_ENTRY_KEYS)}"
            raise LiberoDataError(src, f"unknown key {key!r}{hint}", key=name)


def _sample_weight(entry: Mapping[str, Any], src: str, name: str) -> float:
    weight = entry.get("sample_weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not np.isfinite(weight) or weight <= 0:
        raise LiberoDataError(src, f"sample_weight is {weight!r}; expected a number > 0", key=name)
    return float(weight)


def _suite_spec(name: str, entry: Any, src: str, root: str | Path) -> SuiteSpec:
    if not isinstance(entry, Mapping) or "path" not in entry:
        raise LiberoDataError(src, "each suite needs at least {'path': ...}", key=name)
    if not isinstance(entry["path"], str) or not entry["path"]:
        raise LiberoDataError(src, f"path is {entry['path']!r}; expected a folder (or hub id) as a string", key=name)
    path = Path(entry["path"]).expanduser()
    fmt = entry.get("format", "hdf5")
    if fmt not in FORMATS:
        raise LiberoDataError(src, f"format {fmt!r}: expected one of {FORMATS}", key=name)
    if fmt != lr.FORMAT:
        _check_entry_keys(entry, src, name)
    options = lr.parse_entry(entry, src, name) if fmt == lr.FORMAT else {}
    layout = entry.get("layout", "auto")
    if layout not in lh.LAYOUT_CHOICES:
        raise LiberoDataError(src, f"layout {layout!r}: expected one of {lh.LAYOUT_CHOICES}", key=name)
    weight = _sample_weight(entry, src, name)
    source = entry.get("instruction_source")
    source = lh.INSTRUCTION_ALIASES.get(source, source)
    if source is not None and source not in lh.INSTRUCTION_SOURCES:
        raise LiberoDataError(src, f"instruction_source {source!r}: expected one of {lh.INSTRUCTION_SOURCES}",
                              key=name)
    return SuiteSpec(name, path if path.is_absolute() else Path(root) / path, weight, layout,
                     None if fmt == lr.FORMAT else source, fmt, options)


def load_suite_specs(datasets: str | Path | Mapping[str, Any] = DEFAULT_DATASETS_JSON,
                     suites: Sequence[str] | None = None, root: str | Path = REPO_ROOT) -> list[SuiteSpec]:
    """Parse the suites table (a json path or an already-loaded dict); relative paths are resolved
    against ``root`` (the repo root). Keys starting with ``_`` are comments."""
    datasets, src = _read_suites_table(datasets)
    table = {k: v for k, v in datasets.items() if not str(k).startswith("_")}
    names = list(table) if suites is None else list(suites)
    for name in names:
        if name not in table:
            raise LiberoDataError(src, f"suite {name!r} not configured; available: {sorted(table)}", key=name)
    specs = [_suite_spec(name, table[name], src, root) for name in names]
    if not specs:
        raise LiberoDataError(src, "no suites selected")
    return specs


# ------------------------------------------------------------------------------------- readers
class Reader(Protocol):
    """What ``LiberoDataset`` reads a source through: ``data.libero_hdf5.Hdf5Libero`` (one HDF5
    file) and ``data.lerobot_dataset.LeRobotLibero`` (one LeRobot folder) both have it."""

    def lowdim(self, key: str) -> lh.DemoLowDim: ...
    def frames(self, key: str, role: str, idx: Sequence[int]) -> np.ndarray: ...
    def images(self, key: str, role: str, idx: Sequence[int], view: str) -> np.ndarray: ...
    def close(self) -> None: ...


# suite format -> reader of one indexed path (an HDF5 file; a LeRobot dataset folder)
READERS: dict[str, Callable[[Path, "SuiteSpec", DataConfig], Reader]] = {
    "hdf5": lambda path, spec, cfg: lh.Hdf5Libero(path, need_joints=cfg.dataset.use_joint_state),
    lr.FORMAT: lambda path, spec, cfg: lr.LeRobotLibero(path, spec.options.get("keys")),
}


# --------------------------------------------------------------------------------------- index
@dataclass
class _FileInfo:
    path: Path
    suite: int
    layout: str
    instruction: str
    scale: OscScale
    image_hw: tuple[int, int]
    format: str = "hdf5"  # lerobot: path is the dataset folder, demo keys are its episodes


@dataclass
class _DemoInfo:
    file: int
    key: str
    length: int
    steps: np.ndarray = field(repr=False)  # usable chunk-start steps k


def _usable_steps(length: int, layout: str, actions: np.ndarray | None, filter_noops: bool) -> np.ndarray:
    steps = np.arange(lh.obs_offset(layout), length)
    if filter_noops and actions is not None:
        steps = steps[~noop_mask(actions)[steps]]
    return steps


def _fingerprint(files: list[Path]) -> list[list[Any]]:
    out = []
    for p in files:
        st = p.stat()
        out.append([p.name, st.st_size, st.st_mtime_ns])
    return out


def _index_file(path: Path, spec: SuiteSpec, cfg: DataConfig) -> dict[str, Any]:
    """Open, validate and index one file (reads low-dim arrays only)."""
    f = lh.open_file(path)
    try:
        keys = lh.demo_keys(f, path)
        layout = lh.detect_layout(f, path, spec.layout)
        instruction = lh.read_instruction(f, path, spec.instruction_source or cfg.dataset.instruction_source)
        scale = lh.read_osc_scale(f, path)
        demos = []
        for key in keys:
            low = lh.read_demo_lowdim(f, path, key, need_joints=cfg.dataset.use_joint_state)
            steps = _usable_steps(len(low), layout, low.actions, cfg.dataset.filter_noops)
            demos.append({"key": key, "T": len(low), "steps": steps.tolist()})
        hw = lh.image_shape(f, keys[0])
    finally:
        f.close()
    return {"name": path.name, "layout": layout, "instruction": instruction, "osc_pos": list(scale.pos),
            "osc_rot": list(scale.rot), "image_hw": list(hw), "demos": demos}


def _cache_path(spec: SuiteSpec, cfg: DataConfig, cache_dir: Path | None) -> Path:
    key = json.dumps([INDEX_VERSION, spec.layout, spec.instruction_source or cfg.dataset.instruction_source,
                      cfg.dataset.filter_noops, cfg.dataset.use_joint_state])
    h = hashlib.sha1(key.encode()).hexdigest()[:12]
    if cache_dir is None:
        return spec.path / f".rdt_index_{h}.json"
    where = hashlib.sha1(str(spec.path.resolve()).encode()).hexdigest()[:12]
    return Path(cache_dir) / f"{spec.name}_{where}_{h}.json"


def _write_json_atomic(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, mode=0o644) as tmp:  # other users of the data read the cache too, whatever the umask
        tmp.write_text(json.dumps(obj))


def build_suite_index(spec: SuiteSpec, cfg: DataConfig, cache_dir: str | Path | None = None) -> tuple[dict, str]:
    """The suite's index (dict with ``files``), from the cache when its file fingerprints (names,
    sizes, mtimes) match, else rebuilt and saved. Returns (index, "cache" | "built").

    The cache goes next to the data (``<suite>/.rdt_index_<confighash>.json``); a read-only data
    folder falls back to ``~/.cache/rdt_libero/index``.
    """
    files = lh.list_suite_files(spec.path)
    fp = _fingerprint(files)
    path = _cache_path(spec, cfg, Path(cache_dir) if cache_dir else None)
    if path.is_file():
        try:
            cached = json.loads(path.read_text())
            if cached.get("version") == INDEX_VERSION and cached.get("fingerprint") == fp:
                return cached, "cache"
            log.info("index cache %s is stale; rebuilding", path)
        except (json.JSONDecodeError, OSError):
            log.warning("index cache %s unreadable; rebuilding", path)
    index = {"version": INDEX_VERSION, "suite": spec.name, "fingerprint": fp,
             "files": [_index_file(p, spec, cfg) for p in files]}
    try:
        _write_json_atomic(path, index)
    except OSError:
        fallback = _cache_path(spec, cfg, Path.home() / ".cache" / "rdt_libero" / "index")
        try:
            _write_json_atomic(fallback, index)
            log.info("data folder not writable; index cached at %s", fallback)
        except OSError as e:
            log.warning("could not cache the index for %s: %s", spec.name, e)
    return index, "built"


def _writable(folder: Path) -> bool:
    """Writable for us *and* not marked read-only (root ignores permission bits, but a folder with
    no write bits is meant to stay untouched, e.g. shared fixtures)."""
    return os.access(folder, os.W_OK) and bool(folder.stat().st_mode & 0o222)


def _hdf5_index(spec: SuiteSpec, cfg: DataConfig, cache_dir: str | Path | None) -> tuple[list[dict], str]:
    """``build_suite_index`` (cached next to the data, or in the home cache for read-only folders);
    every file entry gets its ``path``."""
    if cache_dir is None and spec.path.is_dir() and not _writable(spec.path):
        cache_dir = Path.home() / ".cache" / "rdt_libero" / "index"
    index, source = build_suite_index(spec, cfg, cache_dir)
    return [{**fi, "path": spec.path / fi["name"]} for fi in index["files"]], source


def _lerobot_index(spec: SuiteSpec, cfg: DataConfig, cache_dir: str | Path | None) -> tuple[list[dict], str]:
    """A LeRobot suite, indexed from its metadata and low-dim columns (not cached); its one "file" is
    the dataset folder (a hub id resolved to its local snapshot)."""
    if cfg.dataset.use_joint_state:
        raise LiberoDataError(spec.path, "use_joint_state needs joint positions; LeRobot LIBERO datasets "
                              "have none (state = eef pos + axis-angle + gripper)")
    root = lr.resolve_root(spec.path, spec.options.get("source", str(spec.path)), spec.options.get("revision"))
    reader = lr.LeRobotLibero(root, spec.options.get("keys"))
    return [{**fi, "path": root} for fi in lr.index_dataset(reader, cfg.dataset.filter_noops)], "built"


# suite format -> its file entries (each with "path": what READERS opens) and where they came from
INDEXERS: dict[str, Callable[[SuiteSpec, DataConfig, Any], tuple[list[dict], str]]] = {
    "hdf5": _hdf5_index,
    lr.FORMAT: _lerobot_index,
}


# ------------------------------------------------------------------------------------- dataset
class LiberoDataset(Dataset):
    """Map-style dataset over one or more LIBERO suites (torch ``Dataset`` protocol, picklable).

    Args:
        config: the typed config (``configs.schema.Config``; its ``common`` and ``dataset`` sections).
        datasets: path of ``finetune_datasets.json`` or the loaded dict (default: the config's
            ``dataset.datasets_config``, relative to ``root``).
        suites: subset of suite names (default: all in the table).
        lang_embed_dir: precomputed language-embedding store; samples then carry ``lang_embed``.
        lang_embed_dim: expected embedding width (the model's ``lang_token_dim``, e.g. 4096).
        cache_dir: where index caches go (default: next to the data).
        split: ``all``, or ``train`` / ``val``: per file, the last ``max(1, round(val_fraction * n))``
            demos (files with >= 2 demos) are held out as ``val`` -- an episode-level split for the
            validation MSE. ``val_fraction`` defaults to the config's ``dataset.val_fraction``.
        root: base for relative suite paths (default: the repo root).

    ``__getitem__(i)`` returns the dict documented in docs/ARCHITECTURE.md (numpy arrays).
    """

    def __init__(self, config: Config,
                 datasets: str | Path | Mapping[str, Any] | None = None,
                 suites: Sequence[str] | None = None, lang_embed_dir: str | Path | None = None,
                 lang_embed_dim: int | None = None, cache_dir: str | Path | None = None,
                 split: str = "all", val_fraction: float | None = None, root: str | Path = REPO_ROOT):
        self.cfg = DataConfig.from_config(config)
        if split not in ("all", "train", "val"):
            raise ValueError(f"split {split!r}: expected all, train or val")
        if datasets is None:
            datasets = Path(self.cfg.dataset.datasets_config)
            datasets = datasets if datasets.is_absolute() else Path(root) / datasets
        val_fraction = self.cfg.dataset.val_fraction if val_fraction is None else val_fraction
        self.specs = load_suite_specs(datasets, suites, root)
        self.split = split
        self.index_sources: dict[str, str] = {}  # suite -> "cache" | "built" (observability / tests)
        self._files: list[_FileInfo] = []
        self._demos: list[_DemoInfo] = []
        for s_idx, spec in enumerate(self.specs):
            files, source = INDEXERS[spec.format](spec, self.cfg, cache_dir)
            self.index_sources[spec.name] = source
            for fi in files:
                self._files.append(_FileInfo(Path(fi["path"]), s_idx, fi["layout"], fi["instruction"],
                                             OscScale(tuple(fi["osc_pos"]), tuple(fi["osc_rot"])),
                                             tuple(fi["image_hw"]), spec.format))
                demos = fi["demos"]
                n_val = max(1, round(val_fraction * len(demos))) if len(demos) >= 2 else 0
                for j, d in enumerate(demos):
                    is_val = j >= len(demos) - n_val
                    if split == "all" or (split == "val") == is_val:
                        self._demos.append(_DemoInfo(len(self._files) - 1, d["key"], d["T"],
                                                     np.asarray(d["steps"], np.int32)))
        sizes = {}
        for f in self._files:
            sizes.setdefault(tuple(f.image_hw), []).append(f.path)
        if len(sizes) > 1:
            listing = "; ".join(f"{h}x{w}: {', '.join(str(p) for p in paths[:3])}" + (" ..." if len(paths) > 3 else "")
                                for (h, w), paths in sorted(sizes.items()))
            raise LiberoDataError(", ".join(str(s.path) for s in self.specs),
                                  f"suites with different image sizes cannot be batched together ({listing}); "
                                  "train on one resolution (e.g. all raw 128 px or all no-noops 256 px suites)")
        counts = [len(d.steps) for d in self._demos]
        self._sample_demo = np.repeat(np.arange(len(self._demos), dtype=np.int32), counts)
        self._sample_step = (np.concatenate([d.steps for d in self._demos]) if self._demos
                             else np.zeros(0, np.int32))
        if len(self._sample_step) == 0:
            raise LiberoDataError(", ".join(str(s.path) for s in self.specs), f"no usable samples (split={split})")
        self.lang_store = None
        if lang_embed_dir is not None:
            self.lang_store = LangEmbeddingStore(lang_embed_dir, lang_embed_dim)
            missing = sorted({f.instruction for f in self._files if f.instruction not in self.lang_store})
            if missing:
                raise LiberoDataError(lang_embed_dir, f"no embedding for instructions {missing}", key="manifest.json")
        self._action_mask = action_mask(self.cfg.dataset.action_encoding)
        self._pid: int | None = None
        self._handles: dict[str, Reader] = {}  # path -> its reader
        self._lowdim: dict[int, lh.DemoLowDim] = {}
        self._action_rms: dict[int, np.ndarray] = {}
        self._encoded: dict[int, np.ndarray] = {}  # per demo: its encoded actions' used slots, float32
        self._used_slots = np.flatnonzero(self._action_mask)
        log.info("LiberoDataset: %d samples from %d demos in %d files (%s)", len(self), len(self._demos),
                 len(self._files), ", ".join(f"{k}: {v}" for k, v in self.index_sources.items()))

    # -- pickling / per-process handles ---------------------------------------------------------
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_handles"], state["_lowdim"], state["_pid"] = {}, {}, None
        return state

    def _handle(self, file_idx: int) -> "Reader":
        """The reader of a file's source (an HDF5 file, a LeRobot folder: ``READERS``), made once per
        process (forked workers must not share the parent's handles)."""
        pid = os.getpid()
        if self._pid != pid:
            self._handles, self._lowdim, self._pid = {}, {}, pid
        fi = self._files[file_idx]
        h = self._handles.get(str(fi.path))  # a LeRobot folder holds several tasks ("files")
        if h is None:
            h = self._handles[str(fi.path)] = READERS[fi.format](fi.path, self.specs[fi.suite], self.cfg)
        return h

    def close(self) -> None:
        for h in self._handles.values():
            h.close()
        self._handles = {}

    def _demo_lowdim(self, demo_idx: int) -> lh.DemoLowDim:
        d = self._demos[demo_idx]
        f = self._handle(d.file)  # also resets caches after a fork
        low = self._lowdim.get(demo_idx)
        if low is None:
            low = f.lowdim(d.key)
            if len(low) != d.length:
                raise LiberoDataError(self._files[d.file].path, "file changed since indexing; delete the "
                                      "index cache", key=f"data/{d.key}")
            self._lowdim[demo_idx] = low
        return low

    # -- public API -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(len(self._sample_step))

    @property
    def suite_names(self) -> list[str]:
        return [s.name for s in self.specs]

    def locate(self, i: int) -> tuple[Path, str, int]:
        """(file, demo key, step k) of sample i (k = index of the chunk's first action)."""
        d = self._demos[int(self._sample_demo[i])]
        return self._files[d.file].path, d.key, int(self._sample_step[i])

    def image_sizes(self) -> list[tuple[int, int]]:
        """Distinct (H, W) of the camera images (evaluation renders at the training resolution)."""
        return sorted({tuple(f.image_hw) for f in self._files})

    def task_instructions(self) -> dict[str, str]:
        """{LIBERO task name: the exact instruction training used} for files named ``<task>_demo.hdf5``
        (stored in checkpoints so that evaluation prompts with the same text, whatever per-suite
        ``instruction_source`` produced it)."""
        suffix = "_demo.hdf5"
        return {f.path.name[:-len(suffix)]: f.instruction for f in self._files if f.path.name.endswith(suffix)}

    def file_layouts(self) -> list[tuple[Path, str]]:
        """(path, resolved layout) of every indexed file."""
        return [(f.path, f.layout) for f in self._files]

    def sample_suites(self) -> np.ndarray:
        """(N,) int suite index of every sample."""
        file_of_demo = np.array([d.file for d in self._demos], np.int64)
        suite_of_file = np.array([f.suite for f in self._files], np.int64)
        return suite_of_file[file_of_demo[self._sample_demo]]

    def sample_weights(self) -> np.ndarray:
        """(N,) float64 per-sample weights summing to 1: each suite gets mass ∝ its sample_weight,
        spread evenly over its samples (for ``WeightedRandomSampler``)."""
        suites = self.sample_suites()
        sizes = np.bincount(suites, minlength=len(self.specs)).astype(np.float64)
        w_suite = np.array([s.sample_weight for s in self.specs])
        present = sizes > 0
        w = np.zeros(len(self.specs))
        w[present] = w_suite[present] / sizes[present]
        out = w[suites]
        return out / out.sum()

    def weights_are_uniform(self) -> bool:
        w = self.sample_weights()
        return bool(np.allclose(w, w[0], rtol=1e-9, atol=0))

    def lowdim_vectors(self, demo_idx: int) -> tuple[np.ndarray, np.ndarray]:
        """Encoded (states, first actions) of all indexed steps of one demo: two (n, 128) float64
        arrays -- what the samples of this demo hold at chunk position 0 (used for statistics)."""
        d = self._demos[demo_idx]
        fi = self._files[d.file]
        low = self._demo_lowdim(demo_idx)
        o = d.steps - lh.obs_offset(fi.layout)
        joints = low.joints[o] if low.joints is not None else None
        states, _ = encode_state(low.ee_pos[o], low.ee_ori[o], low.gripper[o], joints,
                                 self.cfg.dataset.use_joint_state)
        acts = encode_actions(low.actions[d.steps], Pose(low.ee_pos[o], low.ee_ori[o]),
                              self.cfg.dataset.action_encoding, fi.scale)
        return states, acts

    def encoded_actions(self, demo_idx: int) -> np.ndarray:
        """(T - offset, used slots) float32: every action of the demo encoded once against the pose
        that preceded it (row j = action j + offset), cached per process; samples slice it instead of
        re-encoding 64 actions (rotation matrices) each. Only the action mask's slots are kept
        (~10 of 128: the cache stays small for all of LIBERO)."""
        enc = self._encoded.get(demo_idx)
        if enc is None:
            d = self._demos[demo_idx]
            fi = self._files[d.file]
            low = self._demo_lowdim(demo_idx)
            off = lh.obs_offset(fi.layout)
            n = d.length - off
            full = encode_actions(low.actions[off:off + n], Pose(low.ee_pos[:n], low.ee_ori[:n]),
                                  self.cfg.dataset.action_encoding, fi.scale)
            enc = np.ascontiguousarray(full[:, self._used_slots], dtype=np.float32)
            self._encoded[demo_idx] = enc
        return enc

    def action_rms(self, demo_idx: int) -> np.ndarray:
        """(128,) root mean square of the demo's encoded actions: the scale of the sampled-action
        l2 error (official ``state_norm``, the RMS of an episode's states -- which its actions, future
        states, share; the actions' own RMS keeps the ratio a relative error under ``delta`` too)."""
        rms = self._action_rms.get(demo_idx)
        if rms is None:
            rms = np.sqrt(np.mean(self.lowdim_vectors(demo_idx)[1] ** 2, axis=0)).astype(np.float32)
            self._action_rms[demo_idx] = rms
        return rms

    def demos_of_suite(self, suite: str) -> list[int]:
        s_idx = self.suite_names.index(suite)
        return [i for i, d in enumerate(self._demos) if self._files[d.file].suite == s_idx]

    def __getitem__(self, i: int) -> dict[str, Any]:
        n = len(self)
        i = int(i)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"sample index {i} out of range for {n} samples")
        cfg = self.cfg
        demo_idx = int(self._sample_demo[i])
        d = self._demos[demo_idx]
        fi = self._files[d.file]
        k = int(self._sample_step[i])
        low = self._demo_lowdim(demo_idx)
        f = self._handle(d.file)
        off = lh.obs_offset(fi.layout)
        o = k - off  # observation preceding actions[k]

        # Images: history frames o-H+1..o; before the demo start repeat frame 0 with mask False.
        hist, valid = history_indices(o, cfg.common.img_history_size)
        # cam_high, right_wrist; left_wrist has no camera
        per_camera = [f.images(d.key, role, hist, cfg.dataset.image_view) for role in lh.CAMERA_ROLES]
        images, mask = camera_slot_images(per_camera, valid)

        joints = low.joints[o] if low.joints is not None else None
        state, state_mask = encode_state(low.ee_pos[o], low.ee_ori[o], low.gripper[o], joints,
                                         cfg.dataset.use_joint_state)

        # Actions k..k+C-1, each encoded against the pose that preceded it; past the episode end,
        # pad with "stay" (hold_action: the last goal, or zero motion for delta).
        m = min(cfg.common.action_chunk_size, d.length - k)
        actions = np.zeros((cfg.common.action_chunk_size, len(self._action_mask)), np.float32)
        actions[:m, self._used_slots] = self.encoded_actions(demo_idx)[k - off:k - off + m]
        if m < cfg.common.action_chunk_size:
            actions[m:] = hold_action(actions[m - 1], cfg.dataset.action_encoding)
        action_valid = np.zeros(cfg.common.action_chunk_size, bool)
        action_valid[:m] = True

        sample = {
            SAMPLE.images: images,
            SAMPLE.image_mask: mask,
            SAMPLE.state: state.astype(np.float32)[None],
            SAMPLE.state_elem_mask: state_mask,
            SAMPLE.actions: actions,
            SAMPLE.action_elem_mask: self._action_mask.copy(),
            SAMPLE.action_valid: action_valid,
            SAMPLE.action_norm: self.action_rms(demo_idx),
            SAMPLE.ctrl_freq: float(cfg.dataset.control_freq),
            SAMPLE.instruction: fi.instruction,
            SAMPLE.suite: self.specs[fi.suite].name,
        }
        if self.lang_store is not None:
            sample[SAMPLE.lang_embed] = self.lang_store.get(fi.instruction)
        return sample
