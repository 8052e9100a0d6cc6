"""Frozen SigLIP vision tower with batched, on-device preprocessing from uint8 images.

The official pipeline preprocesses every image with PIL in the dataloader workers (pad to square with
the mean colour, bicubic resize to 384, normalise). Here the same steps run on the training device
on whole batches of uint8 tensors, and images that are absent (the left-wrist slot on LIBERO,
condition-dropped cameras, history padding) are not encoded at all: they all share one cached
embedding of the background image, which is what SigLIP would produce for them anyway.
"""
from __future__ import annotations

import logging
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from configs.errors import UserError

log = logging.getLogger(__name__)


class EncoderLoadError(UserError, OSError):
    """An encoder path / hub id that does not load (a user mistake: one line, no traceback)."""


def check_encoder_source(name_or_path, what: str) -> None:
    """A local encoder path that does not exist fails here, at once, instead of after a minute of hub
    retries that end in a network error; a file is not a model folder."""
    from pathlib import Path

    from models.loading import missing_local_path

    p = Path(str(name_or_path)).expanduser()
    if p.is_file():
        raise EncoderLoadError(f"cannot load the {what} from {str(name_or_path)!r}: is a file; expected a model "
                               f"folder (config.json + weights) or a hub id")
    problem = None if p.exists() else missing_local_path(name_or_path)
    if problem:
        raise EncoderLoadError(f"cannot load the {what} from {problem}; for the tiny CPU setup run "
                               f"`python -m scripts.make_tiny_encoders` first")


class SiglipVisionTower(nn.Module):
    def __init__(self, name_or_path: str, dtype: torch.dtype = torch.float32):
        super().__init__()
        from transformers import SiglipVisionModel
        from transformers.image_processing_utils import ImageProcessingMixin

        check_encoder_source(name_or_path, "SigLIP vision encoder")
        try:
            # Only the processor's normalisation constants are needed (preprocessing runs here, on the
            # device); reading its config instantiates no torchvision/PIL processor.
            processor, _ = ImageProcessingMixin.get_image_processor_dict(name_or_path)
            self.vision_tower = SiglipVisionModel.from_pretrained(name_or_path, torch_dtype=dtype)
        except OSError as exc:
            raise EncoderLoadError(f"cannot load the SigLIP vision encoder from {name_or_path!r}: {exc}. Pass a hub id "
                          f"(google/siglip-so400m-patch14-384) or a local directory; for the tiny CPU "
                          f"setup run `python -m scripts.make_tiny_encoders` first.") from exc
        self.vision_tower.requires_grad_(False).eval()
        cfg = self.vision_tower.config
        self.image_size = int(cfg.image_size)
        self.num_patches = (cfg.image_size // cfg.patch_size) ** 2
        self.hidden_size = int(cfg.hidden_size)
        mean = torch.tensor(processor["image_mean"], dtype=torch.float32)
        std = torch.tensor(processor["image_std"], dtype=torch.float32)
        self.register_buffer("mean", mean.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", std.view(1, 3, 1, 1), persistent=False)
        # Padding / background colour as the official code: int(mean * 255) per channel (127 grey).
        self.register_buffer("background_rgb", torch.tensor([int(m * 255) for m in processor["image_mean"]],
                                                            dtype=torch.float32).view(1, 3, 1, 1),
                             persistent=False)
        self._background_cache: Optional[torch.Tensor] = None

    def train(self, mode: bool = True):  # always frozen, always eval (no dropout)
        super().train(False)
        return self

    @property
    def device(self) -> torch.device:
        return self.mean.device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.vision_tower.parameters()).dtype

    # ------------------------------------------------------------------ preprocessing
    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """(N, H, W, 3) uint8 (any device) -> (N, 3, S, S) normalised float on the tower's device."""
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"expected (N, H, W, 3) uint8 images, got {tuple(images.shape)} {images.dtype}")
        x = images.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float()
        n, _, h, w = x.shape
        if h != w:  # expand to square with the background colour, image centred
            side = max(h, w)
            canvas = self.background_rgb.expand(n, 3, side, side).clone()
            top, left = (side - h) // 2, (side - w) // 2
            canvas[:, :, top:top + h, left:left + w] = x
            x = canvas
        if x.shape[-1] != self.image_size:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bicubic",
                              align_corners=False, antialias=True).clamp_(0, 255)
        x = (x / 255.0 - self.mean) / self.std
        return x.to(self.dtype)

    # ------------------------------------------------------------------ encoding
    @torch.no_grad()
    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) preprocessed -> (N, num_patches, hidden) patch features."""
        return self.vision_tower(pixel_values=pixel_values).last_hidden_state

    @torch.no_grad()
    def background_embedding(self) -> torch.Tensor:
        """(num_patches, hidden) features of the mean-colour background image, computed once."""
        cache = self._background_cache
        if cache is None or cache.device != self.device or cache.dtype != self.dtype:
            bg = self.background_rgb.expand(1, 3, self.image_size, self.image_size)
            pixels = ((bg / 255.0 - self.mean) / self.std).to(self.dtype)
            self._background_cache = cache = self(pixels)[0]
        return cache

    @torch.no_grad()
    def encode_slots(self, images: torch.Tensor, image_mask: torch.Tensor) -> torch.Tensor:
        """(B, S, H, W, 3) uint8 slots + (B, S) bool validity -> (B, S * num_patches, hidden).

        Only valid slots go through SigLIP; the others get the cached background embedding.
        """
        B, S = images.shape[:2]
        mask = image_mask.to(self.device).reshape(-1).bool()
        out = self.background_embedding().unsqueeze(0).expand(B * S, -1, -1).clone()
        if mask.any():
            valid = images.reshape(B * S, *images.shape[2:])[mask.to(images.device)]
            out[mask] = self(self.preprocess(valid))
        return out.reshape(B, S * self.num_patches, self.hidden_size)

    @torch.no_grad()
    def encode_slots_naive(self, images: torch.Tensor, image_mask: torch.Tensor) -> torch.Tensor:
        """Reference path: background slots replaced by the background image and encoded like the
        rest (what the official pipeline does). Used to test and benchmark ``encode_slots``."""
        B, S = images.shape[:2]
        bg = self.background_rgb.to(torch.uint8).view(1, 1, 1, 3).cpu()
        flat = images.reshape(B * S, *images.shape[2:]).clone()
        flat[~image_mask.reshape(-1).bool().cpu()] = bg
        feats = self(self.preprocess(flat))
        return feats.reshape(B, S * self.num_patches, self.hidden_size)
