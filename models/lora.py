"""LoRA fine-tuning of the RDT runner with peft.

Only the adapter (and the small modules trained in full, by default the state adaptor, which must
learn LIBERO's slot usage) is saved: megabytes instead of gigabytes. The checkpoint folder records
where its base weights come from (``rdt_base.json``), so evaluation rebuilds base + adapter, and
``scripts/merge_lora.py`` writes a plain full checkpoint.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Optional, Sequence

import torch

log = logging.getLogger(__name__)

BASE_FILE = "rdt_base.json"
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


def load_lora_runner(directory: str | os.PathLike, cfg: Optional[dict] = None,
                     dtype: torch.dtype = torch.float32, merge: bool = True):
    """Base (from rdt_base.json) + adapter; merged into a plain RDTRunner unless ``merge=False``."""
    from peft import PeftModel

    from models.loading import CheckpointError, load_runner

    directory = Path(directory)
    base_file = directory / BASE_FILE
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: {'is a file' if directory.exists() else 'not found'}; expected a LoRA "
                              f"checkpoint folder (adapter_config.json + {BASE_FILE})")
    if not (directory / "adapter_config.json").is_file():
        what = ("a full checkpoint (config.json): it needs no merging" if (directory / "config.json").is_file()
                else "no LoRA adapter (no adapter_config.json)")
        raise CheckpointError(f"{directory} is {what}")
    if not base_file.is_file():
        raise CheckpointError(f"{directory} is a LoRA adapter without {BASE_FILE}: cannot tell its base model")
    try:
        base_source = json.loads(base_file.read_text())["base"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{base_file}: expected {{\"base\": <path or hub id>}} ({exc!r})") from None
    base_path = Path(base_source)
    if not base_path.is_absolute() and not base_path.exists() and (directory / base_source).exists():
        base_path = directory / base_source
    base = load_runner(str(base_path) if base_path.exists() else base_source, cfg, dtype)
    model = PeftModel.from_pretrained(base, str(directory))
    if merge:
        return model.merge_and_unload()
    return model
