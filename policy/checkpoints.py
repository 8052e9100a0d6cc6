"""The read side of a training run's folder: which ``checkpoint-N/`` are complete (written by
``train/checkpointing.py``; a checkpoint is complete once its ``trainer_state.json`` exists)."""
from __future__ import annotations

import os
import re
from pathlib import Path

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
