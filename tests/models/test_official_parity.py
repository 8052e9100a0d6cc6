"""Numerical parity with the official RDT code (fixtures generated from thu-ml's implementation).

Two fixtures (tests/fixtures/README.md): ``rdt_tiny_reference_release_norm.pt`` made under timm 1.0.3
(the pinned version the released weights were trained with: variance norm) and ``rdt_tiny_reference.pt``
under a current timm (true RMSNorm). Each carries a top-level ``"norm"`` key naming the norm that
reproduces it; the runner is built with that norm. The default config's norm must reproduce the
release fixture. RDT_PARITY_FIXTURE may point at any other fixture of the same format (other sizes,
odd depth, batch); then only that one is checked.
"""
import os
from pathlib import Path

import pytest
import torch

from configs.loader import load_config
from models.parity import dit_forward, runner_from_fixture_config

ATOL = 1e-5
SCALAR_RTOL = 1e-6  # a scalar such as the loss (~92.6 on some fixtures) is compared relative to its size


def assert_scalar_close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """float32 rounding of a sum grows with its size: 92.6 is only good to ~2e-5 absolute."""
    torch.testing.assert_close(actual.float(), expected.float(), atol=ATOL, rtol=SCALAR_RTOL)


def test_scalars_are_compared_relatively():
    assert_scalar_close(torch.tensor(92.600023), torch.tensor(92.6))  # float32 rounding alone (2.5e-7)
    assert_scalar_close(torch.tensor(1e-6), torch.tensor(0.0))  # near zero: the absolute tolerance
    with pytest.raises(AssertionError):
        assert_scalar_close(torch.tensor(92.61), torch.tensor(92.6))  # a real difference still fails
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
DEFAULT_FIXTURES = ("rdt_tiny_reference_release_norm.pt", "rdt_tiny_reference.pt")


def fixture_paths() -> list[Path]:
    override = os.environ.get("RDT_PARITY_FIXTURE")
    return [Path(override)] if override else [FIXTURES / name for name in DEFAULT_FIXTURES]


@pytest.fixture(scope="module", params=fixture_paths(), ids=lambda p: p.stem)
def fixture(request):
    path = request.param
    if not path.is_file():
        raise FileNotFoundError(f"parity fixture not found: {path} (set RDT_PARITY_FIXTURE)")
    data = torch.load(path, weights_only=False, map_location="cpu")
    if data.get("norm") not in ("release_var", "rms"):
        raise ValueError(f"{path} has no top-level 'norm' key ('release_var' or 'rms')")
    return data


@pytest.fixture(scope="module")
def runner(fixture):
    torch.manual_seed(0)
    r = runner_from_fixture_config(fixture["config"], fixture["norm"])
    r.load_state_dict(fixture["state_dict"], strict=True)
    return r.eval()


def test_default_config_norm_reproduces_the_released_weights():
    """The released RDT-1B needs timm 1.0.3's norm; the default config must choose it."""
    release = torch.load(FIXTURES / "rdt_tiny_reference_release_norm.pt", weights_only=False)
    assert release["norm"] == "release_var"
    assert load_config("configs/base.yaml")["model"]["rdt"]["norm"] == release["norm"]


def test_a_true_rmsnorm_misses_the_release_fixture():
    """Guards the test itself: the release fixture must tell the two norms apart (its activations
    have a non-zero mean); on the mean-square fixture they differ by only ~6e-5."""
    release = torch.load(FIXTURES / "rdt_tiny_reference_release_norm.pt", weights_only=False)
    r = runner_from_fixture_config(release["config"], "rms")
    r.load_state_dict(release["state_dict"], strict=True)
    with torch.no_grad():
        pred = dit_forward(r.eval(), release["inputs"])
    assert (pred - release["outputs"]["dit_forward"]).abs().max() > 0.1


def test_initial_position_embeddings(fixture):
    fresh = runner_from_fixture_config(fixture["config"], fixture["norm"])
    sd = fresh.state_dict()
    for key, ref in fixture["initial_pos_embeds"].items():
        torch.testing.assert_close(sd[key].float(), ref.float(), atol=ATOL, rtol=0, msg=key)


def test_adapted_conditions(runner, fixture):
    inp, out = fixture["inputs"], fixture["outputs"]
    with torch.no_grad():
        lang, img, state = runner.adapt_conditions(
            inp["lang_tokens"], inp["img_tokens"], torch.cat([inp["state_tokens"], inp["action_mask"]], -1))
    torch.testing.assert_close(lang, out["adapted_lang"], atol=ATOL, rtol=0)
    torch.testing.assert_close(img, out["adapted_img"], atol=ATOL, rtol=0)
    torch.testing.assert_close(state, out["adapted_state"], atol=ATOL, rtol=0)


def test_dit_forward(runner, fixture):
    with torch.no_grad():
        pred = dit_forward(runner, fixture["inputs"])
    torch.testing.assert_close(pred, fixture["outputs"]["dit_forward"], atol=ATOL, rtol=0)


def test_loss_with_given_noise_and_timesteps(runner, fixture):
    inp, out = fixture["inputs"], fixture["outputs"]
    with torch.no_grad():
        loss = runner.compute_loss(
            inp["lang_tokens"], inp["lang_attn_mask"], inp["img_tokens"], inp["state_tokens"],
            inp["action_gt"], inp["action_mask"], inp["ctrl_freqs"],
            noise=inp["noise_for_loss"], timesteps=inp["timesteps_for_loss"])
    assert_scalar_close(loss, out["loss"])


@pytest.mark.parametrize("use_cond_cache", [False, True])
def test_five_step_dpm_sample(runner, fixture, use_cond_cache):
    inp, out = fixture["inputs"], fixture["outputs"]
    pred = runner.predict_action(
        inp["lang_tokens"], inp["lang_attn_mask"], inp["img_tokens"], inp["state_tokens"],
        inp["action_mask"], inp["ctrl_freqs"], noise=inp["initial_noise_for_sampling"],
        use_cond_cache=use_cond_cache)
    torch.testing.assert_close(pred, out["predicted_action"], atol=ATOL, rtol=0)
