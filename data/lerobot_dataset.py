"""LIBERO demonstrations in the LeRobot dataset format (v2.x and v3.0), read with pyarrow + PyAV.

Most people now get LIBERO as a LeRobot dataset: openpi's ``physical-intelligence/libero``
(v2.0, openpi keys ``image``/``wrist_image``/``state``/``actions``) or the LeRobot team's
``HuggingFaceVLA/libero`` / ``lerobot/libero`` (v3.0, keys ``observation.images.image``/``image2``,
``observation.state``, ``action``); openpi's ``examples/libero/convert_libero_data_to_lerobot.py``
wrote the first. What they hold, per frame:

- two 256x256 cameras: agentview and eye-in-hand, each LIBERO's stored frame **rotated 180°**
  (``[::-1, ::-1]``): upright, but mirrored left-right against the true camera view;
- ``state`` (8,) float32 = eef position (3) + eef axis-angle (3) + the two finger qpos (2): exactly
  LIBERO's ``obs/ee_pos``, ``obs/ee_ori``, ``obs/gripper_states``;
- ``action`` (7,) float32: LIBERO's raw OSC delta action (gripper -1 open / +1 close);
- the observation is recorded *before* its action (OpenVLA's no-noops regeneration), so frames
  pair with actions like the ``no_noops`` HDF5 layout; the ``fps`` label (10) is not LIBERO's 20 Hz.

Layouts, as lerobot's own code reads and writes them (``lerobot/datasets/utils.py``,
``scripts/convert_dataset_v21_to_v30.py``); the data / video path templates come from
``meta/info.json``, never hard-coded:

- v2.0 / v2.1: ``meta/episodes.jsonl`` (``episode_index``, ``tasks``, ``length``) and
  ``meta/tasks.jsonl``; one parquet per episode (``data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet``)
  and one mp4 per episode and camera (timestamps from 0).
- v3.0: ``meta/episodes/chunk-*/file-*.parquet`` (one row per episode: ``tasks``, ``length``,
  ``data/chunk_index``, ``data/file_index``, ``videos/<camera>/{chunk_index,file_index,from_timestamp}``),
  ``meta/tasks.parquet``; data and video files hold many episodes each (a video episode starts at
  its ``from_timestamp``).
- Every data row has the features plus ``timestamp``, ``frame_index``, ``episode_index``,
  ``index``, ``task_index``. A camera is dtype ``video`` (mp4, decoded with PyAV at the row's
  timestamp) or ``image`` (a ``{bytes, path}`` struct of encoded PNG/JPEG in the parquet, decoded
  with Pillow).

``LiberoDataset`` (``data/dataset.py``) uses this module for suites whose entry in
``configs/finetune_datasets.json`` has ``"format": "lerobot"``; every episode becomes a demo of the
``no_noops`` layout, grouped per task (one task = one "file" of the index, so the per-file val split
holds out each task's last episodes), and samples go through the same ``policy.libero_mapping``
code as the HDF5 files. How the frames are oriented for the model is ``dataset.image_view``
(``policy.libero_mapping.lerobot_image_to_view``).
"""
from __future__ import annotations

import io
import json
import logging
import os
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from data.hub import fetch_hub_dataset
from data.libero_hdf5 import CAMERA_ROLES, DemoLowDim, LiberoDataError
from policy.libero_mapping import OscScale, lerobot_image_to_view, noop_mask

log = logging.getLogger(__name__)

FORMAT = "lerobot"
LAYOUT = "no_noops"  # observation recorded before its action
STATE_WIDTH = 8  # eef pos (3) + axis-angle (3) + finger qpos (2)
ACTION_WIDTH = 7
ROLES = ("agentview", "wrist", "state", "action")
# Feature names of the public LIBERO conversions, tried in this order; a suite entry can name its own
# with "keys": {"agentview": ..., "wrist": ..., "state": ..., "action": ...}.
KEY_CANDIDATES: dict[str, tuple[str, ...]] = {
    "agentview": ("observation.images.image", "image", "observation.images.agentview_image", "agentview_image"),
    "wrist": ("observation.images.image2", "wrist_image", "observation.images.wrist_image",
              "observation.images.eye_in_hand_image", "eye_in_hand_image"),
    "state": ("observation.state", "state"),
    "action": ("action", "actions"),
}
SUPPORTED_VERSIONS = ("v2.0", "v2.1", "v3.0")
ENTRY_KEYS = {"path", "sample_weight", "layout", "format", "keys", "revision", "instruction_source"}
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


def looks_like_hub_id(text: str) -> bool:
    """``owner/name`` that is not a relative/absolute/home path."""
    return bool(_HUB_ID.match(str(text)))


# ------------------------------------------------------------------------------- suite entries
def parse_entry(entry: Mapping[str, Any], src: str, name: str) -> dict[str, Any]:
    """Validate the LeRobot-specific parts of one ``finetune_datasets.json`` entry; returns the options
    kept on the ``SuiteSpec`` (``source``: the path as written, ``revision``, ``keys``)."""
    unknown = sorted(set(entry) - ENTRY_KEYS)
    if unknown:
        import difflib

        close = difflib.get_close_matches(str(unknown[0]), sorted(ENTRY_KEYS), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known: {sorted(ENTRY_KEYS)}"
        raise LiberoDataError(src, f"unknown keys {unknown} for a lerobot suite; {hint}", key=name)
    layout = entry.get("layout", "auto")
    if layout not in ("auto", LAYOUT):
        raise LiberoDataError(src, f"layout {layout!r}: LeRobot LIBERO data records each observation before its "
                              f"action, i.e. layout {LAYOUT!r} (or leave it 'auto')", key=name)
    if entry.get("instruction_source") not in (None, "task"):
        raise LiberoDataError(src, "a lerobot suite takes its instructions from the dataset's own 'task' text; "
                              "instruction_source can only be 'task' (or absent)", key=name)
    keys = entry.get("keys") or {}
    if not isinstance(keys, Mapping) or set(keys) - set(ROLES):
        raise LiberoDataError(src, f"'keys' must map some of {ROLES} to feature names, got {keys!r}", key=name)
    return {"source": str(entry["path"]), "revision": entry.get("revision"), "keys": dict(keys)}


def resolve_root(path: Path, source: str, revision: str | None = None) -> Path:
    """The local dataset folder of a suite: ``path`` if it exists, else the hub id ``source``
    fetched (or found in the local hub cache) with ``huggingface_hub.snapshot_download``.

    Without network the error is one line naming the repository and what to do.
    """
    if path.is_dir():
        return path
    if not looks_like_hub_id(source) or Path(source).expanduser().is_absolute():
        raise LiberoDataError(path, "dataset folder not found (download it with `python download_libero.py "
                              "--format lerobot --repo_id <hub id>`, or fix 'path' in configs/finetune_datasets.json)")
    return fetch_hub_dataset(source, revision)


# ---------------------------------------------------------------------------------- metadata
@dataclass
class Episode:
    index: int
    length: int
    task: str
    data_file: str  # relative to the root
    videos: dict[str, tuple[str, float]] = field(default_factory=dict)  # feature -> (mp4, from_timestamp)

    @property
    def key(self) -> str:
        return f"episode_{self.index:06d}"


def _read_json(path: Path, root: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise LiberoDataError(root, f"cannot read {path.relative_to(root)}: {e}", key=str(path.relative_to(root))) from None


def _read_jsonl(path: Path, root: Path) -> list[dict]:
    rel = str(path.relative_to(root))
    if not path.is_file():
        raise LiberoDataError(root, "missing file (incomplete download?)", key=rel)
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise LiberoDataError(root, f"line {n}: {e}", key=rel) from None
    return out


def _read_parquet(path: Path, root: Path, columns: Sequence[str] | None = None):
    import pyarrow.parquet as pq

    rel = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
    if not path.is_file():
        raise LiberoDataError(root, "missing file (incomplete download?)", key=rel)
    try:
        return pq.read_table(path, columns=list(columns) if columns is not None else None)
    except Exception as e:  # ArrowInvalid, OSError, missing columns
        raise LiberoDataError(root, f"cannot read parquet: {str(e).splitlines()[0]}", key=rel) from None


def _list_column(table, name: str, width: int, root: Path, rel: str) -> np.ndarray:
    """A list<float> column -> (N, width) float64; wrong width or NaN -> ``LiberoDataError``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    col = table.column(name).combine_chunks()
    if not (pa.types.is_list(col.type) or pa.types.is_large_list(col.type) or pa.types.is_fixed_size_list(col.type)):
        raise LiberoDataError(root, f"column {name!r} is {col.type}, expected a list of {width} numbers", key=rel)
    if col.null_count:
        raise LiberoDataError(root, f"column {name!r} has {col.null_count} null rows", key=rel)
    lengths = np.asarray(pc.list_value_length(col).to_numpy(zero_copy_only=False))
    if len(lengths) and (lengths != width).any():
        bad = int(lengths[lengths != width][0])
        raise LiberoDataError(root, f"column {name!r} has rows of width {bad}, expected {width}", key=rel)
    arr = np.asarray(col.flatten().to_numpy(zero_copy_only=False), np.float64).reshape(-1, width)
    bad = ~np.isfinite(arr)
    if bad.any():
        raise LiberoDataError(root, f"column {name!r} has NaN/inf values (first at row {int(np.argwhere(bad)[0, 0])})",
                              key=rel)
    return arr


def resolve_keys(features: Mapping[str, Any], override: Mapping[str, str] | None, root: Path) -> dict[str, str]:
    """Feature name for each role (agentview, wrist, state, action), checked against ``info.json``."""
    override = dict(override or {})
    keys = {}
    for role in ROLES:
        if role in override:
            if override[role] not in features:
                raise LiberoDataError(root, f"'keys.{role}' = {override[role]!r} is not a feature of this dataset "
                                      f"(features: {sorted(features)})", key="meta/info.json")
            keys[role] = override[role]
            continue
        found = [k for k in KEY_CANDIDATES[role] if k in features]
        if not found:
            raise LiberoDataError(root, f"no {role} feature (tried {list(KEY_CANDIDATES[role])}; features: "
                                  f"{sorted(features)}); name it with \"keys\": {{\"{role}\": ...}} in the suite entry",
                                  key="meta/info.json")
        keys[role] = found[0]
    for role, width in (("state", STATE_WIDTH), ("action", ACTION_WIDTH)):
        ft = features[keys[role]]
        shape = tuple(ft.get("shape") or ())
        if shape != (width,):
            what = ("eef position (3) + axis-angle (3) + gripper finger qpos (2)" if role == "state"
                    else "LIBERO's 7-d OSC delta action")
            raise LiberoDataError(root, f"feature {keys[role]!r} ({role}) has shape {shape}, expected ({width},) = {what}",
                                  key="meta/info.json")
    for role in CAMERA_ROLES:
        ft = features[keys[role]]
        if ft.get("dtype") not in ("video", "image"):
            raise LiberoDataError(root, f"feature {keys[role]!r} ({role}) has dtype {ft.get('dtype')!r}; expected "
                                  "video or image", key="meta/info.json")
        shape = tuple(ft.get("shape") or ())
        if len(shape) != 3 or 3 not in (shape[0], shape[-1]):
            raise LiberoDataError(root, f"feature {keys[role]!r} ({role}) has shape {shape}; expected an RGB image",
                                  key="meta/info.json")
    return keys


def _image_hw(ft: Mapping[str, Any]) -> tuple[int, int]:
    shape = tuple(ft["shape"])
    names = list(ft.get("names") or [])
    if names[:1] in (["channel"], ["channels"]) or (shape[0] == 3 and shape[-1] != 3):
        return int(shape[1]), int(shape[2])
    return int(shape[0]), int(shape[1])


# ------------------------------------------------------------------------------------ reader
class LeRobotLibero:
    """One local LeRobot LIBERO dataset folder: metadata at construction, low-dim data and frames on demand.

    Args:
        root: the folder holding ``meta/info.json``.
        keys: feature names per role (default: the public conversions' names, ``KEY_CANDIDATES``).
    Raises ``LiberoDataError`` (naming the folder and the file or key) for anything missing or malformed.
    """

    def __init__(self, root: str | Path, keys: Mapping[str, str] | None = None):
        self.root = root = Path(root)
        if not root.is_dir():
            raise LiberoDataError(root, "dataset folder not found (download it with `python download_libero.py "
                                  "--format lerobot`, or fix 'path' in configs/finetune_datasets.json)")
        info_path = root / "meta" / "info.json"
        if not info_path.is_file():
            raise LiberoDataError(root, "not a LeRobot dataset (no meta/info.json); HDF5 suites need no "
                                  "\"format\" (or \"format\": \"hdf5\") in finetune_datasets.json", key="meta/info.json")
        info = _read_json(info_path, root)
        if not isinstance(info, dict) or "features" not in info or "codebase_version" not in info:
            raise LiberoDataError(root, "not a LeRobot dataset info (needs codebase_version and features)",
                                  key="meta/info.json")
        self.version = str(info["codebase_version"])
        if self.version not in SUPPORTED_VERSIONS:
            raise LiberoDataError(root, f"LeRobot codebase_version {self.version!r} is not supported "
                                  f"(supported: {SUPPORTED_VERSIONS})", key="meta/info.json")
        self.info = info
        self.fps = float(info.get("fps") or 0)
        self.features: dict[str, Any] = info["features"]
        self.keys = resolve_keys(self.features, keys, root)
        self.camera_dtype = {role: self.features[self.keys[role]]["dtype"] for role in CAMERA_ROLES}
        hws = {_image_hw(self.features[self.keys[role]]) for role in CAMERA_ROLES}
        if len(hws) != 1:
            raise LiberoDataError(root, f"the two cameras differ in size {sorted(hws)}", key="meta/info.json")
        self.image_hw: tuple[int, int] = hws.pop()
        self.episodes: list[Episode] = (self._episodes_v3() if self.version.startswith("v3")
                                        else self._episodes_v2())
        if not self.episodes:
            raise LiberoDataError(root, "no episodes", key="meta/episodes")
        self._by_key = {e.key: e for e in self.episodes}
        self._reset_process_state()

    # -- metadata ---------------------------------------------------------------------------------
    def _template(self, name: str) -> str:
        t = self.info.get(name)
        if not t:
            raise LiberoDataError(self.root, f"no {name!r} template", key="meta/info.json")
        return t

    def _episodes_v2(self) -> list[Episode]:
        rows = _read_jsonl(self.root / "meta" / "episodes.jsonl", self.root)
        chunks = int(self.info.get("chunks_size") or 1000)
        data_t = self._template("data_path")
        video_t = self.info.get("video_path")
        out = []
        for r in rows:
            try:
                idx, length, tasks = int(r["episode_index"]), int(r["length"]), list(r["tasks"])
            except (KeyError, TypeError, ValueError) as e:
                raise LiberoDataError(self.root, f"bad episode row {r!r}: {e!r}", key="meta/episodes.jsonl") from None
            chunk = idx // chunks
            videos = {}
            for role in CAMERA_ROLES:
                if self.camera_dtype[role] == "video":
                    if not video_t:
                        raise LiberoDataError(self.root, "video cameras but no 'video_path'", key="meta/info.json")
                    videos[self.keys[role]] = (video_t.format(episode_chunk=chunk, video_key=self.keys[role],
                                                              episode_index=idx), 0.0)
            out.append(Episode(idx, length, self._one_task(tasks, idx),
                               data_t.format(episode_chunk=chunk, episode_index=idx), videos))
        return sorted(out, key=lambda e: e.index)

    def _episodes_v3(self) -> list[Episode]:
        files = sorted((self.root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
        if not files:
            raise LiberoDataError(self.root, "no episode metadata files (incomplete download?)",
                                  key="meta/episodes/chunk-*/file-*.parquet")
        data_t = self._template("data_path")
        video_t = self.info.get("video_path")
        cams = [self.keys[r] for r in CAMERA_ROLES if self.camera_dtype[r] == "video"]
        cols = ["episode_index", "tasks", "length", "data/chunk_index", "data/file_index"]
        for k in cams:
            cols += [f"videos/{k}/chunk_index", f"videos/{k}/file_index", f"videos/{k}/from_timestamp"]
        out = []
        for f in files:
            rows = _read_parquet(f, self.root, cols).to_pylist()
            for r in rows:
                idx = int(r["episode_index"])
                videos = {}
                for k in cams:
                    if not video_t:
                        raise LiberoDataError(self.root, "video cameras but no 'video_path'", key="meta/info.json")
                    videos[k] = (video_t.format(video_key=k, chunk_index=int(r[f"videos/{k}/chunk_index"]),
                                                file_index=int(r[f"videos/{k}/file_index"])),
                                 float(r[f"videos/{k}/from_timestamp"]))
                data = data_t.format(chunk_index=int(r["data/chunk_index"]), file_index=int(r["data/file_index"]))
                out.append(Episode(idx, int(r["length"]), self._one_task(list(r["tasks"] or []), idx), data, videos))
        return sorted(out, key=lambda e: e.index)

    def _one_task(self, tasks: list, idx: int) -> str:
        if len(tasks) != 1:
            raise LiberoDataError(self.root, f"episode {idx} has tasks {tasks!r}; a LIBERO episode has exactly one "
                                  "instruction", key="meta/episodes")
        return " ".join(str(tasks[0]).split())

    # -- per-process caches (handles must not cross a fork) ------------------------------------------
    def _reset_process_state(self) -> None:
        self._pid = os.getpid()
        self._tables: dict[str, dict[int, dict[str, np.ndarray]]] = {}  # data file -> episode -> arrays
        self._row_groups: OrderedDict = OrderedDict()  # (file, camera, row group) -> list of encoded images
        self._pq_files: dict[str, Any] = {}

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.update(_tables={}, _row_groups=OrderedDict(), _pq_files={}, _pid=None)
        return state

    def _check_pid(self) -> None:
        if self._pid != os.getpid():
            self._reset_process_state()

    def close(self) -> None:
        self._reset_process_state()

    # -- low-dim data ---------------------------------------------------------------------------------
    def _load_data_file(self, rel: str) -> dict[int, dict[str, np.ndarray]]:
        self._check_pid()
        if rel in self._tables:
            return self._tables[rel]
        ks = self.keys
        table = _read_parquet(self.root / rel, self.root,
                              [ks["state"], ks["action"], "episode_index", "frame_index", "timestamp"])
        state = _list_column(table, ks["state"], STATE_WIDTH, self.root, rel)
        action = _list_column(table, ks["action"], ACTION_WIDTH, self.root, rel)
        ep_col = np.asarray(table.column("episode_index").to_numpy(), np.int64)
        frame = np.asarray(table.column("frame_index").to_numpy(), np.int64)
        ts = np.asarray(table.column("timestamp").to_numpy(), np.float64)
        per_ep = {}
        for e in np.unique(ep_col):
            rows = np.flatnonzero(ep_col == e)
            rows = rows[np.argsort(frame[rows], kind="stable")]
            per_ep[int(e)] = {"rows": rows, "frame": frame[rows], "state": state[rows], "action": action[rows],
                              "timestamp": ts[rows]}
        self._tables[rel] = per_ep
        return per_ep

    def _episode_arrays(self, ep: Episode) -> dict[str, np.ndarray]:
        per_ep = self._load_data_file(ep.data_file)
        arr = per_ep.get(ep.index)
        if arr is None:
            raise LiberoDataError(self.root, f"episode {ep.index} has no rows", key=ep.data_file)
        if len(arr["frame"]) != ep.length or (arr["frame"] != np.arange(ep.length)).any():
            raise LiberoDataError(self.root, f"episode {ep.index}: {len(arr['frame'])} rows with frame_index "
                                  f"{arr['frame'][:3].tolist()}..., metadata says {ep.length} frames", key=ep.data_file)
        return arr

    def episode(self, key: str) -> Episode:
        try:
            return self._by_key[key]
        except KeyError:
            raise LiberoDataError(self.root, "no such episode", key=key) from None

    def lowdim(self, key: str) -> DemoLowDim:
        """One episode's actions and proprio in the HDF5 reader's form (float64, length T)."""
        arr = self._episode_arrays(self.episode(key))
        s = arr["state"]
        return DemoLowDim(arr["action"], s[:, 0:3], s[:, 3:6], s[:, 6:8], None)

    # -- frames ---------------------------------------------------------------------------------------
    def frames(self, key: str, role: str, idx: Sequence[int]) -> np.ndarray:
        """Frames ``idx`` (any order, repeats allowed) of one camera role (``agentview`` / ``wrist``) of
        one episode -> (len(idx), H, W, 3) uint8, as stored in the dataset (rotated 180° from LIBERO's)."""
        ep = self.episode(key)
        arr = self._episode_arrays(ep)
        idx = np.asarray(list(idx), np.int64)
        if len(idx) == 0 or idx.min() < 0 or idx.max() >= ep.length:
            raise IndexError(f"frames {idx.tolist()} out of range for episode {ep.index} ({ep.length} frames)")
        feat = self.keys[role]
        if self.camera_dtype[role] == "video":
            video, t0 = ep.videos[feat]
            out = self._decode_video(video, t0 + arr["timestamp"][idx])
        else:
            out = self._decode_images(ep.data_file, feat, arr["rows"][idx])
        h, w = self.image_hw
        if out.shape[1:] != (h, w, 3):
            raise LiberoDataError(self.root, f"decoded frames of shape {out.shape[1:]}, info.json says {(h, w, 3)}",
                                  key=feat)
        return out

    def images(self, key: str, role: str, idx: Sequence[int], view: str) -> np.ndarray:
        """``frames`` turned into the model's ``view`` (``policy.libero_mapping.IMAGE_VIEWS``)."""
        return lerobot_image_to_view(self.frames(key, role, idx), view)

    def _decode_video(self, rel: str, timestamps: np.ndarray) -> np.ndarray:
        """PyAV: seek to the keyframe before the first timestamp, decode forward, take the frame nearest
        to each timestamp (within a quarter frame)."""
        import av

        path = self.root / rel
        if not path.is_file():
            raise LiberoDataError(self.root, "missing video file (incomplete download?)", key=rel)
        first, last = float(timestamps.min()), float(timestamps.max())
        tol = 0.25 / self.fps if self.fps > 0 else 1e-3
        frames, ts = [], []
        try:
            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                container.seek(max(0, round(first / stream.time_base) - 1), backward=True, any_frame=False,
                               stream=stream)
                for frame in container.decode(stream):
                    if frame.pts is None:
                        continue
                    t = float(frame.pts * stream.time_base)
                    if t < first - tol:
                        continue
                    frames.append(frame.to_ndarray(format="rgb24"))
                    ts.append(t)
                    if t >= last - tol:
                        break
        except (av.error.FFmpegError, OSError) as e:
            raise LiberoDataError(self.root, f"cannot decode video: {e}", key=rel) from None
        if not frames:
            raise LiberoDataError(self.root, f"no frame decoded in [{first:.4f}, {last:.4f}] s", key=rel)
        ts_arr = np.asarray(ts)
        nearest = np.abs(timestamps[:, None] - ts_arr[None, :]).argmin(1)
        err = np.abs(ts_arr[nearest] - timestamps)
        if (err > tol).any():
            raise LiberoDataError(self.root, f"no frame within {tol:.4f} s of timestamp "
                                  f"{float(timestamps[err > tol][0]):.4f} (decoded {ts_arr.min():.4f}..{ts_arr.max():.4f})",
                                  key=rel)
        return np.stack([frames[i] for i in nearest])

    def _parquet_file(self, rel: str):
        import pyarrow.parquet as pq

        self._check_pid()
        pf = self._pq_files.get(rel)
        if pf is None:
            path = self.root / rel
            if not path.is_file():
                raise LiberoDataError(self.root, "missing file (incomplete download?)", key=rel)
            pf = self._pq_files[rel] = pq.ParquetFile(path)
        return pf

    def _decode_images(self, rel: str, feat: str, rows: np.ndarray) -> np.ndarray:
        """Encoded images stored in the parquet: read only the row groups holding ``rows`` (lerobot's
        writer, through HF datasets, uses small row groups for image data) and decode with Pillow."""
        from PIL import Image

        pf = self._parquet_file(rel)
        md = pf.metadata
        starts = np.cumsum([0] + [md.row_group(i).num_rows for i in range(md.num_row_groups)])
        out = []
        for r in rows:
            g = int(np.searchsorted(starts, r, side="right") - 1)
            cache_key = (rel, feat, g)
            blobs = self._row_groups.get(cache_key)
            if blobs is None:
                try:
                    col = pf.read_row_group(g, columns=[feat]).column(feat).combine_chunks()
                except Exception as e:
                    raise LiberoDataError(self.root, f"cannot read images: {str(e).splitlines()[0]}",
                                          key=f"{rel}:{feat}") from None
                blobs = col.field("bytes").to_pylist() if hasattr(col, "field") else col.to_pylist()
                self._row_groups[cache_key] = blobs
                while len(self._row_groups) > 4:
                    self._row_groups.popitem(last=False)
            else:
                self._row_groups.move_to_end(cache_key)
            blob = blobs[int(r - starts[g])]
            if blob is None:
                raise LiberoDataError(self.root, f"row {int(r)} has no image bytes", key=f"{rel}:{feat}")
            try:
                out.append(np.asarray(Image.open(io.BytesIO(blob)).convert("RGB")))
            except Exception as e:
                raise LiberoDataError(self.root, f"row {int(r)}: cannot decode image: {e}", key=f"{rel}:{feat}") from None
        return np.stack(out)


# -------------------------------------------------------------------------------------- index
def index_dataset(reader: LeRobotLibero, filter_noops: bool = False) -> list[dict[str, Any]]:
    """``LiberoDataset`` index entries ("files") of a LeRobot dataset: one per task, in the order of
    the task's first episode; demos are the task's episodes (all in the ``no_noops`` layout).

    Reads the state / action columns of every data file (validation: widths, NaN, lengths).
    """
    groups: dict[str, list[dict[str, Any]]] = {}
    for ep in reader.episodes:
        low = reader.lowdim(ep.key)
        steps = np.arange(ep.length)
        if filter_noops:
            steps = steps[~noop_mask(low.actions)[steps]]
        groups.setdefault(ep.task, []).append({"key": ep.key, "T": ep.length, "steps": steps.tolist()})
    scale = OscScale()  # LeRobot sets carry no controller config; LIBERO's OSC limits are the default
    return [{"name": task, "layout": LAYOUT, "instruction": task, "osc_pos": list(scale.pos),
             "osc_rot": list(scale.rot), "image_hw": list(reader.image_hw), "demos": demos}
            for task, demos in groups.items()]


def verify(root: str | Path, keys: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Check a downloaded LeRobot LIBERO folder end to end: metadata, every data file's state/action
    columns (widths, NaN, lengths), every referenced video file present, and the first and last frame
    of the first and last episode decodable. Returns a summary; raises ``LiberoDataError``."""
    reader = LeRobotLibero(root, keys)
    files = index_dataset(reader)
    for ep in reader.episodes:
        for rel, _ in ep.videos.values():
            if not (reader.root / rel).is_file():
                raise LiberoDataError(reader.root, "missing video file (incomplete download?)", key=rel)
    for ep in {reader.episodes[0].index: reader.episodes[0], reader.episodes[-1].index: reader.episodes[-1]}.values():
        for role in CAMERA_ROLES:
            reader.frames(ep.key, role, [0, ep.length - 1])
    return {"version": reader.version, "episodes": len(reader.episodes),
            "frames": sum(e.length for e in reader.episodes), "tasks": len(files),
            "cameras": ",".join(sorted(set(reader.camera_dtype.values()))), "image_hw": reader.image_hw}
