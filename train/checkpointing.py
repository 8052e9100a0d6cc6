"""Atomic checkpoints: ``checkpoint-N/`` appears only once it is complete.

Everything is written into ``checkpoint-N.tmp/`` and renamed at the end (a rename within one
directory is atomic on POSIX), with ``trainer_state.json`` as the last file inside. So a kill at any
moment leaves either the previous checkpoints untouched or a ``.tmp`` folder that ``latest``
ignores and the next run deletes. Pruning keeps the newest complete checkpoints.

Layout of a checkpoint:
    checkpoint-N/config.json, model.safetensors   the runner in save_pretrained form (evaluation
                                                  loads this folder directly)
                 (LoRA: adapter_config.json, adapter_model.safetensors, rdt_base.json instead)
    checkpoint-N/ema/                             optional EMA weights, same form
    checkpoint-N/train_state/                     accelerate/DeepSpeed state: optimizer, scheduler, RNG
    checkpoint-N/trainer_state.json               step, epoch, position in the epoch, metrics
"""
from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Optional

from policy.checkpoints import STATE_FILE, complete_checkpoints

log = logging.getLogger(__name__)



def resolve_resume(resume: Optional[str], output_dir: str | os.PathLike) -> Optional[Path]:
    """``latest`` -> newest complete checkpoint in output_dir (None if there is none yet);
    a path -> that checkpoint (must be complete)."""
    if not resume:
        return None
    if resume == "latest":
        ckpts = complete_checkpoints(output_dir)
        return ckpts[-1][1] if ckpts else None
    path = Path(resume)
    if not (path / STATE_FILE).is_file():
        raise FileNotFoundError(f"--resume_from_checkpoint {resume}: not a complete checkpoint "
                                f"(no {STATE_FILE}); use 'latest' or a checkpoint-N folder")
    return path


def remove_partial(output_dir: str | os.PathLike) -> None:
    """Delete leftovers of checkpoints that were being written when a run died."""
    root = Path(output_dir)
    if root.is_dir():
        for p in root.glob("checkpoint-*.tmp"):
            log.warning("removing incomplete checkpoint %s (a previous run died while writing it)", p)
            shutil.rmtree(p, ignore_errors=True)


def temp_dir_for(output_dir: str | os.PathLike, step: int) -> Path:
    return Path(output_dir) / f"checkpoint-{step}.tmp"


def finalize(tmp_dir: Path, state: dict) -> Path:
    """Write the state file last, fsync it, and rename the folder into place."""
    with open(tmp_dir / STATE_FILE, "w") as f:
        json.dump(state, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    final = tmp_dir.with_name(tmp_dir.name[: -len(".tmp")])
    if final.exists():  # re-saving the same step (e.g. final save == last periodic save)
        shutil.rmtree(final)
    os.replace(tmp_dir, final)
    return final


def prune(output_dir: str | os.PathLike, total_limit: Optional[int]) -> None:
    """Keep at most ``total_limit`` complete checkpoints; the newest is never removed."""
    if not total_limit or total_limit < 1:
        return
    ckpts = complete_checkpoints(output_dir)
    for _, path in ckpts[: max(0, len(ckpts) - total_limit)]:
        log.info("checkpoints_total_limit=%d: removing %s", total_limit, path)
        shutil.rmtree(path, ignore_errors=True)


def read_state(checkpoint: str | os.PathLike) -> dict:
    with open(Path(checkpoint) / STATE_FILE) as f:
        return json.load(f)
