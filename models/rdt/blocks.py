"""Building blocks of the RDT diffusion transformer.

Re-implemented on plain torch (no timm: timm drags in torchvision, which does not import beside the
CPU torch build). Parameter names follow the released RDT-1B checkpoint exactly, so its
``pytorch_model.bin`` loads with ``strict=True``:

    attn.{qkv, q_norm, k_norm, proj}, cross_attn.{q, kv, q_norm, k_norm, proj}, ffn.{fc1, fc2},
    norm1/norm2/norm3, final_layer.{norm_final, ffn_final}.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Optional

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


NORM_KINDS = ("release_var", "rms")
NORM_EPS = 1e-6  # RDT's norms (timm RmsNorm default) everywhere


class RDTNorm(nn.Module):
    """The normalisation of every RDT block, with a learnable scale (``weight``) and no bias.

    ``release_var``: what timm <= 1.0.12's ``RmsNorm`` computes, and so what the released RDT-1B was
    trained with (the official code pins timm 1.0.3): ``x * rsqrt(var(x, unbiased) + eps) * weight``
    -- a *variance* scale; ``x`` itself is not centred (timm issue #2380, fixed in 1.0.13).
    Computed in float32 whatever the input / autocast dtype (a bf16 variance is poor), then cast back.
    ``rms``: a true RMSNorm, ``x * rsqrt(mean(x**2) + eps) * weight`` (``F.rms_norm``).
    The two agree only on zero-mean activations.
    """

    def __init__(self, dim: int, kind: str):
        super().__init__()
        if kind not in NORM_KINDS:
            raise ValueError(f"model.rdt.norm must be one of {NORM_KINDS}, got {kind!r}")
        self.kind = kind
        self.dim = dim
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "rms":
            return F.rms_norm(x, (self.dim,), self.weight.to(x.dtype), NORM_EPS)
        return release_var_norm(x, self.weight)

    def extra_repr(self) -> str:
        return f"{self.dim}, kind={self.kind}, eps={NORM_EPS}"


def release_var_norm(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """timm 1.0.3 ``rms_norm`` over the last dim, in float32 (see ``RDTNorm``).

    The unbiased variance is written out (mean, centre, sum of squares / (n-1)): the same numbers
    as ``torch.var`` to float32 rounding, and ~5x faster on the CPU for short rows such as the
    64-wide q/k heads (``python -m scripts.bench_inference`` prints this norm against ``rms``).
    """
    with torch.autocast(device_type=x.device.type, enabled=False):
        xf = x.float()
        centred = xf - xf.mean(dim=-1, keepdim=True)
        var = (centred * centred).sum(dim=-1, keepdim=True) / (x.shape[-1] - 1)
        return (xf * torch.rsqrt(var + NORM_EPS) * weight.float()).to(x.dtype)


class Float32Linear(nn.Linear):
    """A Linear computed in float32 whatever its weights' dtype (bf16 under DeepSpeed) or autocast.

    Same parameters and state_dict keys as ``nn.Linear``. Used for the output head: the predicted
    chunk holds world-frame positions (~1 m), where bf16 is only good to +-4 mm.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=x.device.type, enabled=False):
            bias = None if self.bias is None else self.bias.float()
            return F.linear(x.float(), self.weight.float(), bias)


class Mlp(nn.Module):
    """fc1 -> GELU(tanh) -> fc2. RDT keeps the hidden width equal to the model width (not 4x)."""

    def __init__(self, in_features: int, hidden_features: int, out_features: int, float32: bool = False):
        super().__init__()
        linear = Float32Linear if float32 else nn.Linear
        self.fc1 = linear(in_features, hidden_features)
        self.act = nn.GELU(approximate="tanh")
        self.fc2 = linear(hidden_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class TimestepEmbedder(nn.Module):
    """Scalar (diffusion step or control frequency) -> sinusoid [cos, sin] (256) -> MLP -> (B, H)."""

    def __init__(self, hidden_size: int, frequency_embedding_size: int = 256, dtype=torch.float32):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(frequency_embedding_size, hidden_size),
            nn.SiLU(),
            nn.Linear(hidden_size, hidden_size),
        )
        self.frequency_embedding_size = frequency_embedding_size
        self.dtype = dtype

    @staticmethod
    def sinusoid(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
        half = dim // 2
        freqs = torch.exp(
            -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half
        )
        args = t[:, None].float() * freqs[None]
        emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
        if dim % 2:
            emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
        return emb

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        emb = self.sinusoid(t, self.frequency_embedding_size).to(self.mlp[0].weight.dtype)
        return self.mlp(emb)


class Attention(nn.Module):
    """Multi-head self-attention with a norm on q and k (qk-norm, over head_dim), through SDPA."""

    def __init__(self, dim: int, num_heads: int, norm: str):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"hidden size {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.q_norm = RDTNorm(self.head_dim, norm)
        self.k_norm = RDTNorm(self.head_dim, norm)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        # Normalised in the projection's (B, N, heads, head_dim) layout, then moved to SDPA's
        # (B, heads, N, head_dim): a norm over rows that are not contiguous is ~3x slower on the CPU.
        q, k, v = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).unbind(2)
        q, k = self.q_norm(q), self.k_norm(k)
        x = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return self.proj(x.transpose(1, 2).reshape(B, N, C))


class CrossAttention(nn.Module):
    """Queries from the action sequence, keys/values from a condition (language or image tokens).

    The condition is fixed across the DPM-Solver steps of one chunk, so ``project_kv`` can be run
    once and its result passed back as ``kv`` (the inference fast path; identical numerics).
    """

    def __init__(self, dim: int, num_heads: int, norm: str):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"hidden size {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.q = nn.Linear(dim, dim, bias=True)
        self.kv = nn.Linear(dim, dim * 2, bias=True)
        self.q_norm = RDTNorm(self.head_dim, norm)
        self.k_norm = RDTNorm(self.head_dim, norm)
        self.proj = nn.Linear(dim, dim)

    def project_kv(self, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L, C) condition -> normalised keys and values, each (B, heads, L, head_dim)."""
        B, L, C = c.shape
        k, v = self.kv(c).reshape(B, L, 2, self.num_heads, self.head_dim).unbind(2)
        return self.k_norm(k).transpose(1, 2), v.transpose(1, 2)  # normalised before the transpose, as in Attention

    def forward(
        self,
        x: torch.Tensor,
        c: Optional[torch.Tensor],
        mask: Optional[torch.Tensor] = None,
        kv: Optional[tuple[torch.Tensor, torch.Tensor]] = None,
    ) -> torch.Tensor:
        B, N, C = x.shape
        q = self.q_norm(self.q(x).reshape(B, N, self.num_heads, self.head_dim)).transpose(1, 2)
        k, v = kv if kv is not None else self.project_kv(c)
        attn_mask = None
        if mask is not None:
            # (B, L) bool, True = attend -> broadcast over heads and queries.
            attn_mask = mask.reshape(B, 1, 1, -1).expand(-1, -1, N, -1)
        x = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.proj(x.transpose(1, 2).reshape(B, N, C))


class RDTBlock(nn.Module):
    """Pre-norm residual block: self-attention, cross-attention to one condition, MLP.

    No adaLN: the diffusion step and control frequency enter as tokens of the sequence.
    """

    def __init__(self, hidden_size: int, num_heads: int, norm: str):
        super().__init__()
        self.norm1 = RDTNorm(hidden_size, norm)
        self.attn = Attention(hidden_size, num_heads, norm)
        self.cross_attn = CrossAttention(hidden_size, num_heads, norm)
        self.norm2 = RDTNorm(hidden_size, norm)
        self.ffn = Mlp(hidden_size, hidden_size, hidden_size)
        self.norm3 = RDTNorm(hidden_size, norm)

    def forward(self, x, c, mask=None, kv=None):
        x = x + self.attn(self.norm1(x))
        x = x + self.cross_attn(self.norm2(x), c, mask, kv=kv)
        x = x + self.ffn(self.norm3(x))
        return x


class FinalLayer(nn.Module):
    """Norm -> MLP(H -> H -> out_channels), all in float32: its output is the action chunk, absolute
    positions included, so it must not be rounded to bf16 (tests/policy/test_precision.py)."""

    def __init__(self, hidden_size: int, out_channels: int, norm: str):
        super().__init__()
        self.norm_final = RDTNorm(hidden_size, norm)
        self.ffn_final = Mlp(hidden_size, hidden_size, out_channels, float32=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ffn_final(self.norm_final(x.float()))


# --------------------------------------------------------------------------------------------
# Sin-cos position embeddings (MAE style: [sin, cos] halves), and RDT's multimodal variant.
# --------------------------------------------------------------------------------------------
def get_1d_sincos_pos_embed_from_grid(embed_dim: int, pos) -> np.ndarray:
    """(M,) positions -> (M, embed_dim) with [sin | cos] halves."""
    if embed_dim % 2:
        raise ValueError(f"embed_dim must be even, got {embed_dim}")
    omega = np.arange(embed_dim // 2, dtype=np.float64) / (embed_dim / 2.0)
    omega = 1.0 / 10000**omega
    pos = np.asarray(pos, dtype=np.float64).reshape(-1)
    out = np.einsum("m,d->md", pos, omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def get_nd_sincos_pos_embed_from_grid(embed_dim: int, grid_sizes) -> np.ndarray:
    """Embedding for every cell of an N-d grid (row-major), splitting the dims equally among the
    axes whose size is > 1 (leftover dims stay zero). Returns (*grid_sizes, embed_dim)."""
    num_sizes = len(grid_sizes)
    num_valid = sum(1 for s in grid_sizes if s > 1)
    emb = np.zeros(tuple(grid_sizes) + (embed_dim,))
    if num_valid == 0:
        return emb
    dim_each = embed_dim // num_valid
    dim_each -= dim_each % 2
    offset = 0
    for axis, size in enumerate(grid_sizes):
        if size <= 1:
            continue
        axis_emb = get_1d_sincos_pos_embed_from_grid(dim_each, np.arange(size))
        shape = [1] * num_sizes + [dim_each]
        shape[axis] = size
        emb[..., offset : offset + dim_each] += axis_emb.reshape(shape)
        offset += dim_each
    return emb


def get_multimodal_cond_pos_embed(embed_dim: int, mm_cond_lens: "OrderedDict[str, object]",
                                  embed_modality: bool = True) -> np.ndarray:
    """Position embedding for a concatenation of modalities.

    ``mm_cond_lens`` maps modality name -> length (int) or grid shape (tuple). A negative length /
    grid size means "this many tokens, but no positional information along that axis": every token
    gets the embedding of position 0 there. With ``embed_modality`` the first half of the channels
    encodes the modality index and the second half the position inside the modality.
    Returns (total_tokens, embed_dim).
    """
    pos_dim = embed_dim // 2 if embed_modality else embed_dim
    modality_emb = get_1d_sincos_pos_embed_from_grid(pos_dim, np.arange(len(mm_cond_lens)))
    parts = []
    for idx, cond_len in enumerate(mm_cond_lens.values()):
        if isinstance(cond_len, (tuple, list)):
            embed_sizes = tuple(s if s > 0 else 1 for s in cond_len)
            full_sizes = tuple(abs(s) for s in cond_len)
            pos = get_nd_sincos_pos_embed_from_grid(pos_dim, embed_sizes)
            pos = np.broadcast_to(pos, full_sizes + (pos_dim,)).reshape(-1, pos_dim)
        else:
            pos = get_1d_sincos_pos_embed_from_grid(pos_dim, np.arange(max(cond_len, 1)))
            pos = np.broadcast_to(pos, (abs(cond_len), pos_dim))
        if embed_modality:
            mod = np.broadcast_to(modality_emb[idx], pos.shape)
            pos = np.concatenate([mod, pos], axis=1)
        parts.append(pos)
    return np.concatenate(parts, axis=0)
