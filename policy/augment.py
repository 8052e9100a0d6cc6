"""Image augmentation on the training device, on batches of (N, 3, H, W) float images in [0, 255].

Mirrors the official recipe (half of the valid images get one of colour-only / corruption-only /
both): colour jitter (brightness .3, contrast .4, saturation .5, hue .03) and the official imgaug
corruption (``corrupt``: always one of Gaussian / Laplace / Poisson noise up to 0.05 * 255, plus half of
the time one of Gaussian (sigma <= 3) / average / median / motion blur). Plain torch ops on the
device: no torchvision / imgaug, and every random draw comes from the caller's generator so a resumed
run replays it exactly.
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


def _conv_per_image(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """(1, 3, H, W) convolved with one (kh, kw) kernel per channel, replicate-padded (same size)."""
    kh, kw = kernel.shape
    pad = (kw // 2, kw - 1 - kw // 2, kh // 2, kh - 1 - kh // 2)
    weight = kernel.to(x).expand(3, 1, kh, kw)
    return F.conv2d(F.pad(x, pad, mode="replicate"), weight, groups=3)


def _separable(x: torch.Tensor, k1d: torch.Tensor) -> torch.Tensor:
    """A separable kernel (outer product of ``k1d`` with itself) as two 1-d passes."""
    return _conv_per_image(_conv_per_image(x, k1d[None, :]), k1d[:, None])


def _gaussian_1d(sigma: float, device) -> torch.Tensor:
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, device=device, dtype=torch.float32)
    k = torch.exp(-(t ** 2) / (2 * sigma ** 2))
    return k / k.sum()


def _motion_kernel(k: int, angle: float, device) -> torch.Tensor:
    """A k x k line through the centre at ``angle`` (imgaug MotionBlur)."""
    t = torch.linspace(-(k - 1) / 2, (k - 1) / 2, 4 * k, device=device)
    xs = torch.round(t * math.cos(angle) + (k - 1) / 2).long().clamp(0, k - 1)
    ys = torch.round(t * math.sin(angle) + (k - 1) / 2).long().clamp(0, k - 1)
    kernel = torch.zeros(k, k, device=device)
    kernel[ys, xs] = 1.0
    return kernel / kernel.sum()


def _median_blur(x: torch.Tensor, k: int) -> torch.Tensor:
    r = k // 2
    patches = F.unfold(F.pad(x, (r, r, r, r), mode="replicate"), k)  # (1, 3*k*k, H*W)
    return patches.view(1, 3, k * k, -1).median(dim=2).values.view_as(x)


BLURS = ("gaussian", "average", "median", "motion")


def _blur(x: torch.Tensor, kind: str, generator: torch.Generator) -> torch.Tensor:
    """One image (1, 3, H, W) through one of imgaug's blurs with its random strength."""
    dev = x.device

    def randint(low, high):  # inclusive
        return int(torch.randint(low, high + 1, (1,), generator=generator, device=dev))

    if kind == "gaussian":  # GaussianBlur(sigma=(0, 3))
        sigma = float(torch.rand(1, generator=generator, device=dev)) * 3.0
        return x if sigma < 0.05 else _separable(x, _gaussian_1d(sigma, dev))
    if kind == "average":  # AverageBlur(k=(2, 7))
        k = randint(2, 7)
        return _separable(x, torch.full((k,), 1.0 / k, device=dev))
    if kind == "median":  # MedianBlur(k=(3, 11)), odd sizes
        return _median_blur(x, 2 * randint(1, 5) + 1)
    k = randint(3, 36)  # MotionBlur(k=(3, 36)), any direction
    angle = float(torch.rand(1, generator=generator, device=dev)) * 2 * math.pi
    return _conv_per_image(x, _motion_kernel(k, angle, dev))


NOISES = ("gaussian", "laplace", "poisson")


def corrupt(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The official corruption (imgaug), per image: always one of Gaussian / Laplace / Poisson noise
    (scale up to 0.05 * 255, the same for the three channels of a pixel), then, half of the time, one
    blur: {Gaussian (sigma <= 3), average, median} or a motion blur, each pair member equally likely."""
    n, _, h, w = x.shape
    dev = x.device
    noise_kind = torch.randint(0, len(NOISES), (n,), generator=generator, device=dev)
    scale = _uniform(n, 0, 0.05 * 255, generator, dev).view(-1, 1, 1, 1)
    gauss = torch.randn((n, 1, h, w), generator=generator, device=dev)
    # Laplace(0, 1) by inverse CDF of a uniform in (-1/2, 1/2)
    u = torch.rand((n, 1, h, w), generator=generator, device=dev).clamp(1e-6, 1 - 1e-6) - 0.5
    laplace = -torch.sign(u) * torch.log1p(-2 * u.abs())
    lam = scale.expand(n, 1, h, w)
    poisson = torch.poisson(lam, generator=generator) - lam  # centred, as imgaug's AdditivePoissonNoise
    noise = torch.where((noise_kind == 0).view(-1, 1, 1, 1), gauss * scale,
                        torch.where((noise_kind == 1).view(-1, 1, 1, 1), laplace * scale, poisson))
    out = (x + noise).clamp(0, 255)
    # SomeOf((0, 1), [OneOf(gaussian, average, median), MotionBlur])
    blur_count = torch.randint(0, 2, (n,), generator=generator, device=dev)
    blur_pick = torch.randint(0, 2, (n,), generator=generator, device=dev)
    blur_one_of = torch.randint(0, 3, (n,), generator=generator, device=dev)
    for i in torch.nonzero(blur_count).flatten().tolist():
        kind = "motion" if int(blur_pick[i]) == 1 else BLURS[int(blur_one_of[i])]
        out[i:i + 1] = _blur(out[i:i + 1], kind, generator)
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
