"""The batch the policy takes, one schema for dataset samples and live observations.

A sample (``data.dataset.LiberoDataset.__getitem__``, or one observation in
``RDTPolicy.build_batch``) is a dict with the ``SAMPLE`` keys; ``collate`` stacks samples into a
batch with the ``BATCH`` keys. Both key sets are named here only: every module that builds or reads
a sample or a batch uses these names.

``collate`` stacks samples on the CPU (images stay uint8: 4x less to move than float). Everything
else happens on the model's device in ``policy.conditioning.Conditioner``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch


@dataclass(frozen=True)
class SampleKeys:
    """Keys of one sample (numpy arrays unless noted; S = history x camera slots, T = chunk)."""

    images: str = "images"                      # (S, H, W, 3) uint8
    image_mask: str = "image_mask"              # (S,) bool
    state: str = "state"                        # (1, 128) float32
    state_elem_mask: str = "state_elem_mask"    # (128,) float32 0/1
    actions: str = "actions"                    # (T, 128) float32 (training samples only)
    action_elem_mask: str = "action_elem_mask"  # (128,) float32 0/1
    action_valid: str = "action_valid"          # (T,) bool (training samples only)
    action_norm: str = "action_norm"            # (128,) float32 (training samples only)
    ctrl_freq: str = "ctrl_freq"                # float, Hz
    instruction: str = "instruction"            # str
    suite: str = "suite"                        # str
    lang_embed: str = "lang_embed"              # (L, D) tensor (optional: precomputed embeddings)


@dataclass(frozen=True)
class BatchKeys:
    """Keys of a collated batch (torch tensors unless noted; B = batch)."""

    images: str = "images"                      # (B, S, H, W, 3) uint8
    image_mask: str = "image_mask"              # (B, S) bool
    state: str = "state"                        # (B, 1, 128) float32
    state_elem_mask: str = "state_elem_mask"    # (B, 128) float32
    actions: str = "actions"                    # (B, T, 128) float32
    action_elem_mask: str = "action_elem_mask"  # (B, 128) float32
    action_valid: str = "action_valid"          # (B, T) bool
    action_norm: str = "action_norm"            # (B, 128) float32
    ctrl_freqs: str = "ctrl_freqs"              # (B,) float32
    instructions: str = "instructions"          # list of str
    suites: str = "suites"                      # list of str
    lang_embeds: str = "lang_embeds"            # (B, L, D) zero-padded
    lang_mask: str = "lang_mask"                # (B, L) bool


SAMPLE = SampleKeys()
BATCH = BatchKeys()

# sample key -> (batch key, float32?) for the arrays that are stacked; the rest is handled by name.
_STACKED = {
    SAMPLE.images: (BATCH.images, False),
    SAMPLE.image_mask: (BATCH.image_mask, False),
    SAMPLE.state: (BATCH.state, True),
    SAMPLE.state_elem_mask: (BATCH.state_elem_mask, True),
    SAMPLE.actions: (BATCH.actions, True),
    SAMPLE.action_elem_mask: (BATCH.action_elem_mask, True),
    SAMPLE.action_valid: (BATCH.action_valid, False),
    SAMPLE.action_norm: (BATCH.action_norm, True),
}
# Every sample has these; training samples add the action targets, and any sample may carry its
# precomputed language embedding.
REQUIRED = frozenset({SAMPLE.images, SAMPLE.image_mask, SAMPLE.state, SAMPLE.state_elem_mask,
                      SAMPLE.action_elem_mask, SAMPLE.ctrl_freq, SAMPLE.instruction, SAMPLE.suite})
TARGETS = frozenset({SAMPLE.actions, SAMPLE.action_valid, SAMPLE.action_norm})
OPTIONAL = TARGETS | {SAMPLE.lang_embed}


def pad_embeddings(embeds: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """List of (L_i, D) -> zero-padded (B, L, D) and its (B, L) bool mask."""
    for e in embeds:
        if e.ndim != 2:
            raise ValueError(f"language embeddings must be (L, D), got shape {tuple(e.shape)}")
    length = max(e.shape[0] for e in embeds)
    out = embeds[0].new_zeros(len(embeds), length, embeds[0].shape[1])
    mask = torch.zeros(len(embeds), length, dtype=torch.bool)
    for i, e in enumerate(embeds):
        out[i, : e.shape[0]] = e
        mask[i, : e.shape[0]] = True
    return out, mask


def _sample_keys(samples: Sequence[dict]) -> frozenset:
    """The keys all samples share; a missing required key, an unknown key, samples that differ, or
    action targets given only in part are errors (nothing is filled in)."""
    if not samples:
        raise ValueError("collate: no samples")
    keys = frozenset(samples[0])
    for i, s in enumerate(samples):
        if frozenset(s) != keys:
            raise ValueError(f"collate: sample {i} has keys {sorted(s)}, sample 0 has {sorted(keys)}")
    if REQUIRED - keys:
        raise KeyError(f"collate: samples lack {sorted(REQUIRED - keys)}")
    if keys - REQUIRED - OPTIONAL:
        raise KeyError(f"collate: unknown sample keys {sorted(keys - REQUIRED - OPTIONAL)}")
    if keys & TARGETS and TARGETS - keys:
        raise KeyError(f"collate: samples carry {sorted(keys & TARGETS)} but not {sorted(TARGETS - keys)}")
    return keys


def collate(samples: Sequence[dict]) -> dict[str, Any]:
    """Samples (``SAMPLE`` keys) -> one batch (``BATCH`` keys). Only what the samples hold is
    collated: evaluation samples have no action targets, so their batch has none either."""
    keys = _sample_keys(samples)
    out: dict[str, Any] = {}
    for key, (batch_key, to_float) in _STACKED.items():
        if key in keys:
            t = torch.from_numpy(np.stack([s[key] for s in samples]))
            out[batch_key] = t.float() if to_float else t
    out[BATCH.ctrl_freqs] = torch.tensor([float(s[SAMPLE.ctrl_freq]) for s in samples])
    out[BATCH.instructions] = [s[SAMPLE.instruction] for s in samples]
    out[BATCH.suites] = [s[SAMPLE.suite] for s in samples]
    if SAMPLE.lang_embed in keys:
        out[BATCH.lang_embeds], out[BATCH.lang_mask] = pad_embeddings(
            [torch.as_tensor(s[SAMPLE.lang_embed]) for s in samples])
    return out


def action_targets(batch: dict, device) -> torch.Tensor:
    """The diffusion target (B, T, 128), float32 whatever the mixed precision: abs_goal chunks hold
    world-frame positions (~1 m), where bf16 is only good to +-4 mm (0.08 action units after decode)."""
    return batch[BATCH.actions].to(device, dtype=torch.float32, non_blocking=True)
