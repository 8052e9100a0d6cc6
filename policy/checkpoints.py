"""The read side of a training run's folder: which ``checkpoint-N/`` are complete (written by
``train/checkpointing.py``; a checkpoint is complete once its ``trainer_state.json`` exists), and
the typed config a checkpoint was trained with."""
from __future__ import annotations

import copy
import logging
import os
import re
from pathlib import Path
from typing import Sequence

from configs.loader import BASE_PRESET, apply_override, fill_from_base, read_preset
from configs.schema import Config
from models.loading import norm_for_legacy_config

log = logging.getLogger(__name__)

STATE_FILE = "trainer_state.json"
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
