"""The official RDT code's way of building a runner for a parity fixture's geometry, and the raw DiT
forward the fixtures record: what tests/models/test_official_parity.py and scripts/gpu_check.py compare
this repository's `RDTRunner` against."""
import torch

from models.rdt_runner import RDTRunner


def runner_from_fixture_config(cfg: dict, norm: str) -> RDTRunner:
    """Build the runner the way the official training script does for this geometry."""
    model_cfg = {
        "rdt": {"hidden_size": cfg["hidden_size"], "depth": cfg["depth"], "num_heads": cfg["num_heads"],
                "norm": norm},
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


def dit_forward(runner, inp) -> torch.Tensor:
    horizon = inp["action_gt"].shape[1]
    lang, img, state = runner.adapt_conditions(
        inp["lang_tokens"], inp["img_tokens"], torch.cat([inp["state_tokens"], inp["action_mask"]], -1))
    actions = runner.state_adaptor(torch.cat([inp["action_gt"], inp["action_mask"].expand(-1, horizon, -1)], -1))
    x = torch.cat([state, actions], 1)
    return runner.model(x, inp["ctrl_freqs"], inp["dit_timesteps"], lang, img, lang_mask=inp["lang_attn_mask"])
