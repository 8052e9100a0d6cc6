"""Image augmentation statistics: what the official recipe does, measured on many draws."""
import numpy as np
import torch

from policy import augment


def test_corruption_always_adds_one_noise_and_blurs_half_the_images(monkeypatch):
    blurs = []
    monkeypatch.setattr(augment, "_blur", lambda x, kind, g: (blurs.append(kind), x)[1])
    n = 600
    x = torch.full((n, 3, 32, 32), 128.0)
    out = augment.corrupt(x, torch.Generator().manual_seed(0))
    residual = (out - x)[:, 0]
    std = residual.flatten(1).std(1)
    assert bool((residual.flatten(1).abs().amax(1) > 0).all())  # every image gets noise ...
    assert torch.equal(out[:, 0], out[:, 1])               # ... the same on the three channels of a pixel
    assert float(std.max()) < 0.05 * 255 * 1.6              # scale up to 0.05 * 255
    # the three noises: Poisson residuals sit on one lattice (k - lam), Laplace has heavy tails
    frac = (residual - residual.floor()).flatten(1)
    poisson = (frac.max(1).values - frac.min(1).values) < 1e-3
    z = (residual.flatten(1) - residual.flatten(1).mean(1, keepdim=True)) / std.clamp_min(1e-6)[:, None]
    kurtosis = (z ** 4).mean(1)
    laplace = ~poisson & (kurtosis > 4.5)
    gaussian = ~poisson & (kurtosis < 4.5)
    for share in (poisson, laplace, gaussian):
        assert abs(share.float().mean().item() - 1 / 3) < 0.08
    # SomeOf((0, 1), [OneOf(gaussian, average, median), motion])
    assert abs(len(blurs) / n - 0.5) < 0.07
    kinds = {k: blurs.count(k) / len(blurs) for k in augment.BLURS}
    assert abs(kinds["motion"] - 0.5) < 0.08
    for k in ("gaussian", "average", "median"):
        assert abs(kinds[k] - 1 / 6) < 0.06


def test_each_blur_smooths_an_edge_and_keeps_the_size():
    x = torch.zeros(1, 3, 40, 40)
    x[..., 20:] = 255.0
    g = torch.Generator().manual_seed(3)
    for kind in augment.BLURS:
        for _ in range(3):
            y = augment._blur(x.clone(), kind, g)
            assert y.shape == x.shape and float(y.min()) >= -1e-3 and float(y.max()) <= 255.0 + 1e-3
    # a strong Gaussian and a wide motion blur leave intermediate values at the edge
    assert 0 < float(augment._separable(x, augment._gaussian_1d(2.0, "cpu"))[0, 0, 20, 19]) < 255
    motion = augment._conv_per_image(x, augment._motion_kernel(9, 0.0, "cpu"))
    assert 0 < float(motion[0, 0, 20, 19]) < 255


def test_augment_images_touches_half_of_the_valid_images_only():
    n = 400
    images = torch.full((n, 16, 16, 3), 100, dtype=torch.uint8)
    valid = torch.arange(n) % 4 != 0  # a quarter are background slots
    out = augment.augment_images(images, valid, torch.Generator().manual_seed(1))
    changed = (out != images).flatten(1).any(1)
    assert not changed[~valid].any()
    assert abs(changed[valid].float().mean().item() - 0.5) < 0.08
    np.testing.assert_array_equal(out[~valid].numpy(), images[~valid].numpy())
