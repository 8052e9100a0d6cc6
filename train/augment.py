"""Image augmentation on the training device, on batches of (N, 3, H, W) float images in [0, 255].

Mirrors the official recipe (half of the valid images get one of colour-only / corruption-only /
both): colour jitter (brightness .3, contrast .4, saturation .5, hue .03) and a corruption (Gaussian
noise up to 0.05 * 255, or a Gaussian blur). Plain torch ops: no torchvision/timm on the CPU path,
and every random draw comes from the caller's generator so a resumed run replays it exactly.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

_GRAY = torch.tensor([0.299, 0.587, 0.114])


def _uniform(n, low, high, generator, device):
    return torch.rand(n, generator=generator, device=device) * (high - low) + low


def _gray(x: torch.Tensor) -> torch.Tensor:
    return (x * _GRAY.to(x).view(1, 3, 1, 1)).sum(1, keepdim=True)


def _rotate_hue(x: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Rotate the chroma plane of YIQ by ``angle`` (radians, per image)."""
    to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]]).to(x)
    from_yiq = torch.linalg.inv(to_yiq)
    yiq = torch.einsum("ij,njhw->nihw", to_yiq, x)
    c, s = torch.cos(angle).view(-1, 1, 1), torch.sin(angle).view(-1, 1, 1)
    i, q = yiq[:, 1], yiq[:, 2]
    yiq = torch.stack([yiq[:, 0], c * i - s * q, s * i + c * q], 1)
    return torch.einsum("ij,njhw->nihw", from_yiq, yiq)


def color_jitter(x: torch.Tensor, generator: torch.Generator, brightness=0.3, contrast=0.4,
                 saturation=0.5, hue=0.03) -> torch.Tensor:
    n, dev = x.shape[0], x.device
    b = _uniform(n, 1 - brightness, 1 + brightness, generator, dev).view(-1, 1, 1, 1)
    x = (x * b).clamp(0, 255)
    c = _uniform(n, 1 - contrast, 1 + contrast, generator, dev).view(-1, 1, 1, 1)
    mean = _gray(x).mean(dim=(2, 3), keepdim=True)
    x = ((x - mean) * c + mean).clamp(0, 255)
    s = _uniform(n, 1 - saturation, 1 + saturation, generator, dev).view(-1, 1, 1, 1)
    g = _gray(x)
    x = ((x - g) * s + g).clamp(0, 255)
    h = _uniform(n, -hue, hue, generator, dev) * 2 * math.pi
    return _rotate_hue(x, h).clamp(0, 255)


def _gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    radius = 3
    offsets = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    kernels = torch.exp(-(offsets[None] ** 2) / (2 * sigma.view(-1, 1) ** 2))
    kernels = kernels / kernels.sum(1, keepdim=True)  # (N, k)
    n, ch, h, w = x.shape
    xs = x.reshape(1, n * ch, h, w)
    kh = kernels.repeat_interleave(ch, 0).view(n * ch, 1, 1, -1)
    xs = F.conv2d(F.pad(xs, (radius, radius, 0, 0), mode="replicate"), kh, groups=n * ch)
    kv = kernels.repeat_interleave(ch, 0).view(n * ch, 1, -1, 1)
    xs = F.conv2d(F.pad(xs, (0, 0, radius, radius), mode="replicate"), kv, groups=n * ch)
    return xs.view(n, ch, h, w)


def corrupt(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Per image: Gaussian noise (sigma up to 0.05 * 255) or a Gaussian blur (sigma 0.1-1.5 px)."""
    n, dev = x.shape[0], x.device
    use_noise = torch.rand(n, generator=generator, device=dev) < 0.5
    sigma_noise = _uniform(n, 0, 0.05 * 255, generator, dev).view(-1, 1, 1, 1)
    noise = torch.randn(x.shape, generator=generator, device=dev, dtype=x.dtype) * sigma_noise
    blurred = _gaussian_blur(x, _uniform(n, 0.1, 1.5, generator, dev).to(x.dtype))
    out = torch.where(use_noise.view(-1, 1, 1, 1), x + noise, blurred)
    return out.clamp(0, 255)


def augment_images(images: torch.Tensor, valid: torch.Tensor, generator: torch.Generator,
                   prob: float = 0.5) -> torch.Tensor:
    """(N, H, W, 3) uint8 + (N,) bool -> augmented uint8 (only valid images, each with ``prob``)."""
    dev = images.device
    n = images.shape[0]
    chosen = valid.to(dev) & (torch.rand(n, generator=generator, device=dev) < prob)
    mode = torch.randint(0, 3, (n,), generator=generator, device=dev)  # 0 colour, 1 corrupt, 2 both
    if not chosen.any():
        return images
    x = images[chosen].permute(0, 3, 1, 2).float()
    m = mode[chosen]
    colour = color_jitter(x, generator)
    x = torch.where(((m == 0) | (m == 2)).view(-1, 1, 1, 1), colour, x)
    corrupted = corrupt(x, generator)
    x = torch.where(((m == 1) | (m == 2)).view(-1, 1, 1, 1), corrupted, x)
    out = images.clone()
    out[chosen] = x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
    return out
