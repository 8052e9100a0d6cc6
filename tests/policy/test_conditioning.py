"""Condition dropout and noise (policy.conditioning.Conditioner), measured on a large batch: what is dropped,
how often, and what replaces it."""
import numpy as np
import pytest
import torch

from policy.conditioning import Conditioner, ConditioningOptions

B, SLOTS, L, D = 4000, 6, 5, 8
STATE_MEAN = np.linspace(0.1, 1.0, 128)


class SlotProbe:
    """Stands in for SigLIP: one token per slot whose value says whether the slot was kept."""

    device = torch.device("cpu")

    def encode_slots(self, images, image_mask):
        return image_mask.float().unsqueeze(-1)  # (B, S, 1)


def make_batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    image_mask = torch.ones(B, SLOTS, dtype=torch.bool)
    image_mask[:, 2::3] = False  # the left-wrist slot of both frames is absent in LIBERO
    return {
        "images": torch.zeros(B, SLOTS, 4, 4, 3, dtype=torch.uint8), "image_mask": image_mask,
        "state": torch.randn(B, 1, 128, generator=g), "state_elem_mask": torch.ones(B, 128),
        "action_elem_mask": torch.ones(B, 128), "ctrl_freqs": torch.full((B,), 20.0),
        "instructions": ["x"] * B, "suites": ["s"] * B,
        "lang_embeds": torch.randn(B, L, D, generator=g), "lang_mask": torch.ones(B, L, dtype=torch.bool),
    }


def conditioner(**options):
    stats = {"s": {"state_mean": STATE_MEAN.tolist(), "state_std": np.ones(128).tolist()}}
    return Conditioner(SlotProbe(), empty_lang_embed=torch.full((2, D), 7.0), stats=stats,
                       options=ConditioningOptions(**options))


def rate(x: torch.Tensor) -> float:
    return float(x.float().mean())


def test_dropout_targets_and_rates():
    batch = make_batch()
    out = conditioner(cond_mask_prob=0.1, cam_ext_mask_prob=0.3)(batch, torch.Generator().manual_seed(1))
    tol = 0.02
    assert abs(rate(out["ctrl_freqs"] == 0) - 0.1) < tol
    # state replaced by the suite's mean state
    replaced = (out["state_tokens"][:, 0] == torch.tensor(STATE_MEAN, dtype=torch.float32)).all(-1)
    assert abs(rate(replaced) - 0.1) < tol
    kept = ~replaced
    assert torch.equal(out["state_tokens"][kept], batch["state"][kept])
    # state mask zeroed (independently of the replacement)
    assert abs(rate(out["state_mask"][:, 0].sum(-1) == 0) - 0.1) < tol
    # cameras: external (cam_high) 0.3, wrist 0.1, the absent slot stays absent
    slots = out["img_tokens"][..., 0]
    assert abs(rate(slots[:, 0::3] == 0) - 0.3) < tol and abs(rate(slots[:, 1::3] == 0) - 0.1) < tol
    assert rate(slots[:, 2::3] == 0) == 1.0
    # language: dropped rows carry the embedding of "" (here 2 tokens of 7s) and its mask
    dropped = out["lang_attn_mask"].sum(-1) == 2
    assert abs(rate(dropped) - 0.1) < tol
    assert torch.all(out["lang_tokens"][dropped, :2] == 7.0) and torch.all(out["lang_tokens"][dropped, 2:] == 0)
    assert torch.equal(out["lang_tokens"][~dropped], batch["lang_embeds"][~dropped])
    # the action mask is never dropped
    assert torch.all(out["action_mask"] == 1)


def test_state_noise_has_the_snr():
    batch = make_batch()
    out = conditioner(cond_mask_prob=0.0, state_noise_snr=40)(batch, torch.Generator().manual_seed(2))
    noise = out["state_tokens"] - batch["state"]
    assert abs(float(noise.std()) - 1.0 / np.sqrt(10 ** 4)) < 0.001  # std 1 at 40 dB -> sigma 0.01


@pytest.mark.parametrize("options,train", [({"cond_mask_prob": 0.1}, False), ({"cond_mask_prob": 0.0}, True)])
def test_nothing_is_dropped_in_evaluation_or_at_probability_zero(options, train):
    batch = make_batch()
    out = conditioner(**options)(batch, torch.Generator().manual_seed(3), train=train)
    assert torch.all(out["ctrl_freqs"] == 20) and torch.equal(out["state_tokens"], batch["state"])
    assert torch.equal(out["img_tokens"][..., 0].bool(), batch["image_mask"])
    assert torch.equal(out["lang_tokens"], batch["lang_embeds"]) and torch.all(out["state_mask"] == 1)
