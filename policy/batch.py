"""The batch the policy takes: from dataset samples (``collate``) or live observations
(``RDTPolicy.build_batch``), with the same keys.

``collate`` stacks samples on the CPU (images stay uint8: 4x less to move than float). Everything
else happens on the model's device in ``policy.conditioning.Conditioner``.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch


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


def collate(samples: Sequence[dict]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "images": torch.from_numpy(np.stack([s["images"] for s in samples])),            # (B, S, H, W, 3) uint8
        "image_mask": torch.from_numpy(np.stack([s["image_mask"] for s in samples])),    # (B, S) bool
        "state": torch.from_numpy(np.stack([s["state"] for s in samples])).float(),      # (B, 1, 128)
        "state_elem_mask": torch.from_numpy(np.stack([s["state_elem_mask"] for s in samples])).float(),
        "actions": torch.from_numpy(np.stack([s["actions"] for s in samples])).float(),  # (B, T, 128)
        "action_elem_mask": torch.from_numpy(np.stack([s["action_elem_mask"] for s in samples])).float(),
        "action_valid": torch.from_numpy(np.stack([s["action_valid"] for s in samples])),  # (B, T) bool
        "action_norm": torch.from_numpy(np.stack([s["action_norm"] for s in samples])).float(),  # (B, 128)
        "ctrl_freqs": torch.tensor([float(s["ctrl_freq"]) for s in samples]),
        "instructions": [s["instruction"] for s in samples],
        "suites": [s["suite"] for s in samples],
    }
    if "lang_embed" in samples[0]:
        out["lang_embeds"], out["lang_mask"] = pad_embeddings([torch.as_tensor(s["lang_embed"]) for s in samples])
    return out


def action_targets(batch: dict, device) -> torch.Tensor:
    """The diffusion target (B, T, 128), float32 whatever the mixed precision: abs_goal chunks hold
    world-frame positions (~1 m), where bf16 is only good to +-4 mm (0.08 action units after decode)."""
    return batch["actions"].to(device, dtype=torch.float32, non_blocking=True)
