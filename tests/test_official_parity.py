"""Numerical parity with the official RDT code (fixture generated from thu-ml's implementation).

RDT_PARITY_FIXTURE may point at any fixture of the same format (other sizes, odd depth, batch).
"""
import os
from pathlib import Path

import pytest
import torch

from models.rdt_runner import RDTRunner

ATOL = 1e-5
DEFAULT_FIXTURE = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "rdt_tiny_reference.pt"


def runner_from_fixture_config(cfg: dict) -> RDTRunner:
    """Build the runner the way the official training script does for this geometry."""
    model_cfg = {
        "rdt": {"hidden_size": cfg["hidden_size"], "depth": cfg["depth"], "num_heads": cfg["num_heads"]},
        "lang_adaptor": cfg["lang_adaptor"],
        "img_adaptor": cfg["img_adaptor"],
        "state_adaptor": cfg["state_adaptor"],
        "noise_scheduler": cfg["noise_scheduler"],
    }
    img_cond_len = cfg["img_history_size"] * cfg["num_cameras"] * cfg["num_patches"]
    return RDTRunner(
        action_dim=cfg["action_dim"],
        pred_horizon=cfg["pred_horizon"],
        config=model_cfg,
        lang_token_dim=cfg["lang_token_dim"],
        img_token_dim=cfg["img_token_dim"],
        state_token_dim=cfg["state_token_dim"],
        max_lang_cond_len=cfg["max_lang_cond_len"],
        img_cond_len=img_cond_len,
        lang_pos_embed_config=[("lang", -cfg["max_lang_cond_len"])],
        img_pos_embed_config=[("image", (cfg["img_history_size"], cfg["num_cameras"], -cfg["num_patches"]))],
        dtype=torch.float32,
    )


@pytest.fixture(scope="module")
def fixture():
    path = Path(os.environ.get("RDT_PARITY_FIXTURE", DEFAULT_FIXTURE))
    if not path.is_file():
        raise FileNotFoundError(f"parity fixture not found: {path} (set RDT_PARITY_FIXTURE)")
    return torch.load(path, weights_only=False, map_location="cpu")


@pytest.fixture(scope="module")
def runner(fixture):
    torch.manual_seed(0)
    r = runner_from_fixture_config(fixture["config"])
    r.load_state_dict(fixture["state_dict"], strict=True)
    return r.eval()


def test_initial_position_embeddings(fixture):
    fresh = runner_from_fixture_config(fixture["config"])
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
    inp, out = fixture["inputs"], fixture["outputs"]
    horizon = inp["action_gt"].shape[1]
    with torch.no_grad():
        lang, img, state = runner.adapt_conditions(
            inp["lang_tokens"], inp["img_tokens"], torch.cat([inp["state_tokens"], inp["action_mask"]], -1))
        actions = runner.state_adaptor(
            torch.cat([inp["action_gt"], inp["action_mask"].expand(-1, horizon, -1)], -1))
        x = torch.cat([state, actions], 1)
        pred = runner.model(x, inp["ctrl_freqs"], inp["dit_timesteps"], lang, img,
                            lang_mask=inp["lang_attn_mask"])
    torch.testing.assert_close(pred, out["dit_forward"], atol=ATOL, rtol=0)


def test_loss_with_given_noise_and_timesteps(runner, fixture):
    inp, out = fixture["inputs"], fixture["outputs"]
    with torch.no_grad():
        loss = runner.compute_loss(
            inp["lang_tokens"], inp["lang_attn_mask"], inp["img_tokens"], inp["state_tokens"],
            inp["action_gt"], inp["action_mask"], inp["ctrl_freqs"],
            noise=inp["noise_for_loss"], timesteps=inp["timesteps_for_loss"])
    torch.testing.assert_close(loss, out["loss"].float(), atol=ATOL, rtol=0)


@pytest.mark.parametrize("use_cond_cache", [False, True])
def test_five_step_dpm_sample(runner, fixture, use_cond_cache):
    inp, out = fixture["inputs"], fixture["outputs"]
    pred = runner.predict_action(
        inp["lang_tokens"], inp["lang_attn_mask"], inp["img_tokens"], inp["state_tokens"],
        inp["action_mask"], inp["ctrl_freqs"], noise=inp["initial_noise_for_sampling"],
        use_cond_cache=use_cond_cache)
    torch.testing.assert_close(pred, out["predicted_action"], atol=ATOL, rtol=0)
