"""LoRA fine-tuning of the RDT runner with peft.

Only the adapter (and the small modules trained in full, by default the state adaptor, which must
learn LIBERO's slot usage) is saved: megabytes instead of gigabytes. The checkpoint folder records
where its base weights come from (``rdt_base.json``), so evaluation rebuilds base + adapter, and
``scripts/merge_lora.py`` writes a plain full checkpoint. Loading is `models.loading`'s
(`load_lora_runner`), so that loading a checkpoint folder never needs this module.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Optional, Sequence

from models.loading import LORA_BASE_FILE as BASE_FILE
from models.loading import load_lora_runner  # noqa: F401 (a LoRA checkpoint loads like any other)

log = logging.getLogger(__name__)

# Linear layers of every DiT block (self-attention, cross-attention, MLP).
DEFAULT_TARGETS = ("attn.qkv", "attn.proj", "cross_attn.q", "cross_attn.kv", "cross_attn.proj",
                   "ffn.fc1", "ffn.fc2")


def apply_lora(runner, rank: int = 32, alpha: int = 64, dropout: float = 0.0,
               target_modules: Sequence[str] = DEFAULT_TARGETS,
               modules_to_save: Sequence[str] = ("state_adaptor",)):
    from peft import LoraConfig, get_peft_model

    cfg = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(target_modules),
                     modules_to_save=list(modules_to_save) or None, bias="none")
    model = get_peft_model(runner, cfg)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    log.info("LoRA r=%d alpha=%d: %.2fM trainable of %.1fM parameters (%.2f%%)", rank, alpha,
             trainable / 1e6, total / 1e6, 100 * trainable / total)
    return model


def is_lora(model) -> bool:
    return hasattr(model, "peft_config")


def save_lora(model, directory: str | os.PathLike, base_source: str, state_dict: Optional[dict] = None) -> None:
    """Adapter weights + config (peft) and the base reference. ``state_dict``: the whole model's
    weights to take the adapter from (gathered ones under ZeRO-3; default: the live model's)."""
    from utils.atomic import atomic_write_text, set_default_mode

    directory = Path(directory)
    model.save_pretrained(str(directory), state_dict=state_dict)
    for weights in directory.glob("*.safetensors"):  # peft writes them through safetensors: mode 0600
        set_default_mode(weights)
    atomic_write_text(directory / BASE_FILE, json.dumps({"base": str(base_source)}, indent=2))

