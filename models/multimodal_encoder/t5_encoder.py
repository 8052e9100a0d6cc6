"""Frozen T5 text encoder (T5-v1.1-XXL for RDT-1B: 4096-d tokens, up to 1024 of them)."""
from __future__ import annotations

import logging
from typing import Optional, Sequence

import torch
import torch.nn as nn

from models.multimodal_encoder.siglip_encoder import EncoderLoadError, check_encoder_source

log = logging.getLogger(__name__)


class T5Embedder(nn.Module):
    """``encode(texts) -> (embeddings (B, L, D), attention mask (B, L) bool)``.

    ``offload_dir`` (GPU nodes with little memory): let accelerate place what does not fit on the
    GPU on disk, as the official T5Embedder's offload option does.
    """

    def __init__(self, name_or_path: str, max_length: int = 1024, dtype: torch.dtype = torch.float32,
                 device: Optional[str | torch.device] = None, offload_dir: Optional[str] = None):
        super().__init__()
        from transformers import AutoTokenizer, T5EncoderModel

        check_encoder_source(name_or_path, "T5 text encoder")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(name_or_path, model_max_length=max_length)
            kwargs = {"torch_dtype": dtype}
            if offload_dir:
                kwargs.update(device_map="auto", offload_folder=offload_dir)
            self.model = T5EncoderModel.from_pretrained(name_or_path, **kwargs)
        except OSError as exc:
            raise EncoderLoadError(f"cannot load the T5 text encoder from {name_or_path!r}: {exc}. Pass a hub id "
                          f"(google/t5-v1_1-xxl) or a local directory; for the tiny CPU setup run "
                          f"`python -m scripts.make_tiny_encoders` first.") from exc
        if device is not None and not offload_dir:
            self.model.to(device)
        self.model.requires_grad_(False).eval()
        self.max_length = max_length
        self.hidden_size = int(self.model.config.d_model)

    def train(self, mode: bool = True):
        super().train(False)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def encode(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self.tokenizer(list(texts), return_tensors="pt", padding="longest", truncation=False)
        if tokens.input_ids.shape[1] > self.max_length:
            raise ValueError(f"instruction of {tokens.input_ids.shape[1]} tokens exceeds the T5 max length "
                             f"{self.max_length}: {max(texts, key=len)!r}")
        ids = tokens.input_ids.to(self.device)
        mask = tokens.attention_mask.to(self.device).bool()
        emb = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
        return emb, mask
