"""The read side of a training run's folder: which ``checkpoint-N/`` are complete (written by
``train/checkpointing.py``; a checkpoint is complete once its ``trainer_state.json`` exists), what a
user's checkpoint argument points at (`resolve_checkpoint`), and the typed config it was trained with."""
from __future__ import annotations

import copy
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from configs.errors import UserError
from configs.launch import LaunchSettings
from configs.loader import BASE_PRESET, apply_override, fill_from_base, load_typed, read_preset
from configs.schema import Config
from models.loading import looks_like_hub_id, norm_for_legacy_config

log = logging.getLogger(__name__)

STATE_FILE = "trainer_state.json"
TRAIN_CONFIG = "train_config.json"  # written by training next to every checkpoint and in the run folder
_CKPT_RE = re.compile(r"^checkpoint-(\d+)$")


def complete_checkpoints(output_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """(step, path) of complete checkpoints, oldest first."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        m = _CKPT_RE.match(p.name)
        if m and p.is_dir() and (p / STATE_FILE).is_file():
            found.append((int(m.group(1)), p))
    return sorted(found)


def checkpoint_config(raw: dict, source: str, overrides: Sequence[str] = ()) -> Config:
    """The typed config of a checkpoint's ``train_config.json``, also for runs saved by older versions:
    a missing ``model.rdt.norm`` is the one its geometry was trained with (``norm_for_legacy_config``),
    other missing keys come from base.yaml, keys this version no longer has are dropped (logged);
    then ``overrides`` (``key=value``) apply."""
    raw = copy.deepcopy(raw)
    rdt = raw.get("model", {}).get("rdt")
    if isinstance(rdt, dict) and "norm" not in rdt:
        rdt["norm"] = norm_for_legacy_config(rdt)
    base = read_preset(BASE_PRESET)
    dropped = _drop_unknown(raw, base)
    if dropped:
        log.info("%s: ignoring config keys this version does not have: %s", source, ", ".join(dropped))
    full = fill_from_base(raw, source, base=base).to_dict()
    for assignment in overrides:
        apply_override(full, assignment)
    return Config.from_dict(full, source)


def _drop_unknown(raw: dict, template: dict, prefix: str = "") -> list[str]:
    dropped = []
    for key in list(raw):
        if key not in template:
            dropped.append(prefix + key)
            del raw[key]
        elif isinstance(raw[key], dict) and isinstance(template[key], dict):
            dropped += _drop_unknown(raw[key], template[key], f"{prefix}{key}.")
    return dropped


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")


def weights_sha256(path: str | os.PathLike, chunk: int = 1 << 24) -> str:
    """SHA-256 over a checkpoint's weight files (a folder's ``*.safetensors|bin|pt``, in name order, or
    one weights file): what an evaluation row records to say which weights it measured. A LoRA
    adapter folder hashes the adapter; its base is named in ``rdt_base.json``."""
    import hashlib

    p = Path(path)
    files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix in WEIGHT_SUFFIXES) if p.is_dir() else [p]
    if not files:
        return ""
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        with open(f, "rb") as fh:
            while block := fh.read(chunk):
                h.update(block)
    return h.hexdigest()


class PolicyError(UserError, ValueError):
    """A checkpoint / encoder / option problem found before any model is built."""


@dataclass
class ResolvedCheckpoint:
    weights: Path  # folder (save_pretrained / LoRA adapter) or bare weights file
    config: Config  # the resolved typed config the model was trained with
    launch: Optional[LaunchSettings]  # the training launch's paths (None when unknown)
    source: str  # what the user passed, for the CSV
    data_info: dict = field(default_factory=dict)  # {"suites", "image_hw"} of the training data, if known
    concrete: Optional[Path] = None  # the checkpoint a run folder resolved to (pass it back as --checkpoint)

    def training_resolution(self) -> Optional[int]:
        """The square camera size the model was trained on (None when unknown or mixed)."""
        sizes = {tuple(hw) for hw in self.data_info.get("image_hw", [])}
        if len(sizes) == 1:
            h, w = sizes.pop()
            return int(h) if h == w else None
        return None


def find_train_config(path: Path, levels: int = 4) -> Optional[Path]:
    """train_config.json in `path` (a folder) or in one of its parents (bare DeepSpeed .pt files)."""
    p = path if path.is_dir() else path.parent
    for _ in range(levels):
        if (p / TRAIN_CONFIG).is_file():
            return p / TRAIN_CONFIG
        if p.parent == p:
            break
        p = p.parent
    return None


def _model_path(source: str, path: Path, use_ema: bool) -> Path:
    """The weights inside what the user named: a run folder resolves to its newest complete
    checkpoint; ``use_ema`` picks the checkpoint's ``ema/`` folder."""
    if path.is_dir() and not (path / "config.json").is_file() and not (path / "adapter_config.json").is_file():
        ckpts = complete_checkpoints(path)
        if not ckpts:
            raise PolicyError(f"{path} holds no model (no config.json / adapter_config.json) and no complete "
                              f"checkpoint-N subfolder (one with {STATE_FILE})")
        path = ckpts[-1][1]
        log.info("run folder %s: using its newest complete checkpoint %s", source, path.name)
    if use_ema and (not path.is_dir() or not (path / "ema").is_dir()):
        raise PolicyError(f"--ema: {path} has no ema/ folder (train with --use_ema)")
    return path


def resolve_checkpoint(source: str | Path, config: Optional[str | Path] = None, use_ema: bool = False,
                       overrides: Sequence[str] = ()) -> ResolvedCheckpoint:
    """Checkpoint folder, run folder (newest complete ``checkpoint-N``), bare weights file
    (DeepSpeed ``mp_rank_00_model_states.pt``, needs ``config`` unless a ``train_config.json`` sits in
    a parent folder) or, with ``config``, a hub id -> weights path + training config.
    Raises `PolicyError` with the fix."""
    path = Path(source)
    if not path.exists() and looks_like_hub_id(source) and config is not None:  # e.g. the released base model
        return ResolvedCheckpoint(weights=path, config=load_typed(config, overrides), launch=None, source=str(source))
    if not path.exists():
        raise PolicyError(f"checkpoint not found: {source} (expected a checkpoint-N folder, a training run "
                          f"folder with checkpoint-N subfolders, or a weights file with --config)")
    path = _model_path(str(source), path, use_ema)
    launch: Optional[LaunchSettings] = None
    data_info: dict = {}
    if config is not None:
        if not Path(config).is_file():
            why = "is a folder; expected a YAML file" if Path(config).is_dir() else "file not found"
            raise PolicyError(f"--config {config}: {why}")
        cfg = load_typed(config, overrides)
    else:
        tc = find_train_config(path)
        if tc is None:
            raise PolicyError(f"{path}: no {TRAIN_CONFIG} next to the weights (or in a parent folder); pass the "
                              f"YAML config the model was trained with, e.g. --config configs/base.yaml")
        try:
            data = json.loads(tc.read_text())
            raw = data["config"]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
            raise PolicyError(f"{tc}: unreadable training config ({exc!r}); truncated? pass the YAML the model was "
                              f"trained with as --config") from None
        cfg = checkpoint_config(raw, str(tc), overrides)
        launch, data_info = LaunchSettings.from_record(data, str(tc)), data.get("data") or {}
    return ResolvedCheckpoint(weights=path / "ema" if use_ema else path, config=cfg, launch=launch,
                              source=str(source), data_info=data_info, concrete=path)
