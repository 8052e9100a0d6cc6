"""The RDT diffusion transformer (the "model." part of the released RDTRunner state_dict).

Sequence layout: ``[t, freq, state, action_1 .. action_horizon]`` (horizon + 3 tokens). Block ``i``
cross-attends to the language tokens when ``i`` is even and to the image tokens when odd
("alternating condition injection"). Output: the last ``horizon`` tokens projected to
``output_dim``.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Optional, Sequence

import torch
import torch.nn as nn
from torch.utils.checkpoint import checkpoint

from models.rdt.blocks import (
    FinalLayer,
    RDTBlock,
    TimestepEmbedder,
    get_1d_sincos_pos_embed_from_grid,
    get_multimodal_cond_pos_embed,
)


class RDT(nn.Module):
    def __init__(
        self,
        output_dim: int = 128,
        horizon: int = 32,
        hidden_size: int = 1152,
        depth: int = 28,
        num_heads: int = 16,
        max_lang_cond_len: int = 1024,
        img_cond_len: int = 4096,
        lang_pos_embed_config: Optional[Sequence] = None,
        img_pos_embed_config: Optional[Sequence] = None,
        dtype: torch.dtype = torch.bfloat16,
        *,
        norm: str,
    ):
        super().__init__()
        self.horizon = horizon
        self.hidden_size = hidden_size
        self.max_lang_cond_len = max_lang_cond_len
        self.img_cond_len = img_cond_len
        self.lang_pos_embed_config = lang_pos_embed_config
        self.img_pos_embed_config = img_pos_embed_config
        self.dtype = dtype
        self.gradient_checkpointing = False

        self.t_embedder = TimestepEmbedder(hidden_size, dtype=dtype)
        self.freq_embedder = TimestepEmbedder(hidden_size, dtype=dtype)
        # Sin-cos initialised but trainable, as in the released checkpoint.
        self.x_pos_embed = nn.Parameter(torch.zeros(1, horizon + 3, hidden_size))
        self.lang_cond_pos_embed = nn.Parameter(torch.zeros(1, max_lang_cond_len, hidden_size))
        self.img_cond_pos_embed = nn.Parameter(torch.zeros(1, img_cond_len, hidden_size))
        self.blocks = nn.ModuleList([RDTBlock(hidden_size, num_heads, norm) for _ in range(depth)])
        self.final_layer = FinalLayer(hidden_size, output_dim, norm)
        self.initialize_weights()

    # ------------------------------------------------------------------ init
    def initialize_weights(self) -> None:
        def _basic_init(module):
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

        self.apply(_basic_init)
        with torch.no_grad():
            self.x_pos_embed.copy_(self._x_pos_embed_table())
            self.lang_cond_pos_embed.copy_(self._cond_pos_embed_table(
                self.lang_pos_embed_config, self.max_lang_cond_len))
            self.img_cond_pos_embed.copy_(self._cond_pos_embed_table(
                self.img_pos_embed_config, self.img_cond_len))
        for embedder in (self.t_embedder, self.freq_embedder):
            nn.init.normal_(embedder.mlp[0].weight, std=0.02)
            nn.init.normal_(embedder.mlp[2].weight, std=0.02)
        nn.init.zeros_(self.final_layer.ffn_final.fc2.weight)
        nn.init.zeros_(self.final_layer.ffn_final.fc2.bias)
        self.to(self.dtype)

    def _x_pos_embed_table(self) -> torch.Tensor:
        table = get_multimodal_cond_pos_embed(
            self.hidden_size,
            OrderedDict([("timestep", 1), ("ctrl_freq", 1), ("state", 1), ("action", self.horizon)]),
        )
        return torch.from_numpy(table).float().unsqueeze(0)

    def _cond_pos_embed_table(self, config, length: int) -> torch.Tensor:
        if config is None:
            table = get_1d_sincos_pos_embed_from_grid(self.hidden_size, range(length))
        else:
            table = get_multimodal_cond_pos_embed(
                self.hidden_size, OrderedDict([tuple(item) for item in config]), embed_modality=False)
        if table.shape[0] != length:
            raise ValueError(f"position-embedding config {config} gives {table.shape[0]} tokens, "
                             f"expected {length}")
        return torch.from_numpy(table).float().unsqueeze(0)

    # ------------------------------------------------------------------ forward
    def embed_conditions(self, lang_c: torch.Tensor, img_c: torch.Tensor):
        """Add position embeddings to the (adapted) conditions: lang (B, L, H), img (B, I, H)."""
        if lang_c.shape[1] > self.max_lang_cond_len:
            raise ValueError(f"{lang_c.shape[1]} language tokens exceed max_lang_cond_len "
                             f"{self.max_lang_cond_len}")
        lang_c = lang_c + self.lang_cond_pos_embed[:, : lang_c.shape[1]]
        img_c = img_c + self.img_cond_pos_embed
        return lang_c, img_c

    def precompute_condition_kv(self, lang_c, img_c):
        """Per-block cross-attention keys/values of the position-embedded conditions.

        They are the same at every DPM-Solver step of one chunk; computing them once is the
        inference fast path (at 1B the image K/V projections dominate the FLOPs). Computed inside
        ``forward`` (x=None): sharding wrappers (DeepSpeed ZeRO-3, FSDP) gather a module's own
        parameters -- here the position embeddings -- only for the duration of its forward.
        """
        return self(None, None, None, lang_c, img_c)

    def _condition_kv(self, lang_c, img_c):
        lang_c, img_c = self.embed_conditions(lang_c, img_c)
        # Contiguous once per chunk: SDPA over strided keys/values (a view of the kv projection) is
        # ~35% slower on the CPU, and the cache is read at every DPM-Solver step.
        return [tuple(t.contiguous() for t in blk.cross_attn.project_kv(lang_c if i % 2 == 0 else img_c))
                for i, blk in enumerate(self.blocks)]

    def forward(
        self,
        x: torch.Tensor,
        freq: torch.Tensor,
        t: torch.Tensor,
        lang_c: Optional[torch.Tensor],
        img_c: Optional[torch.Tensor],
        lang_mask: Optional[torch.Tensor] = None,
        img_mask: Optional[torch.Tensor] = None,
        cond_kv: Optional[list] = None,
    ) -> torch.Tensor:
        """
        x: (B, 1 + horizon, H) state token + action tokens (already adapted).
        freq: (B,) control frequency; t: (B,) or (1,) diffusion step.
        lang_c: (B, L, H), img_c: (B, I, H) adapted conditions; lang_mask (B, L) bool, True=valid.
        cond_kv: optional output of ``precompute_condition_kv`` (then lang_c/img_c are unused).
        Returns (B, horizon, output_dim); with x=None the per-block condition K/V instead
        (``precompute_condition_kv``).
        """
        if x is None:
            return self._condition_kv(lang_c, img_c)
        t = self.t_embedder(t).unsqueeze(1)
        if t.shape[0] == 1 and x.shape[0] > 1:
            t = t.expand(x.shape[0], -1, -1)
        freq = self.freq_embedder(freq).unsqueeze(1)
        x = torch.cat([t, freq, x], dim=1) + self.x_pos_embed
        if cond_kv is None:
            lang_c, img_c = self.embed_conditions(lang_c, img_c)
        masks = (lang_mask, img_mask)
        for i, block in enumerate(self.blocks):
            c = None if cond_kv is not None else (lang_c if i % 2 == 0 else img_c)
            kv = None if cond_kv is None else cond_kv[i]
            mask = masks[i % 2]
            if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
                x = checkpoint(block, x, c, mask, kv, use_reentrant=False)
            else:
                x = block(x, c, mask, kv=kv)
        x = self.final_layer(x)
        return x[:, -self.horizon:]
