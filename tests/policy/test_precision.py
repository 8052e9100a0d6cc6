"""bf16 must not round the actions that reach the robot (world-frame positions ~1 m: bf16 is only
good to +-4 mm there, 0.08 action units after decode)."""
import torch

from configs.loader import load_config
from models.loading import build_runner
from scripts.check_precision import FIXTURE, check_files, summary_line

LIMIT = 0.005  # action units


def test_fixture_actions_survive_the_bf16_training_and_sampling_paths():
    rows = check_files([FIXTURE])
    assert {r["encoding"] for r in rows} == {"abs_goal", "delta"} and sum(r["steps"] for r in rows) == 2 * 210
    for r in rows:
        assert r["target"] <= LIMIT and r["sampler"] <= LIMIT, r
    assert summary_line(rows).startswith("bf16 max decode error ")


def test_bf16_runner_predicts_float32_chunks_and_its_head_is_float32():
    torch.manual_seed(0)
    runner = build_runner(load_config("configs/tiny.yaml")).to(torch.bfloat16).eval()
    torch.nn.init.normal_(runner.model.final_layer.ffn_final.fc2.weight, std=0.1)
    kw, B = runner.init_kwargs, 2
    mask = torch.zeros(B, 1, kw["action_dim"])
    mask[..., [10, 30, 31, 32, 33, 34, 35, 36, 37, 38]] = 1
    pred = runner.predict_action(
        lang_tokens=torch.randn(B, 3, kw["lang_token_dim"]).bfloat16(),
        lang_attn_mask=torch.ones(B, 3, dtype=torch.bool),
        img_tokens=torch.randn(B, kw["img_cond_len"], kw["img_token_dim"]).bfloat16(),
        state_tokens=torch.randn(B, 1, kw["action_dim"]).bfloat16(), action_mask=mask.bfloat16(),
        ctrl_freqs=torch.full((B,), 20.0).bfloat16())
    assert pred.dtype == torch.float32
    # Values a bf16 tensor cannot hold: the head's output was not rounded on the way.
    assert not torch.equal(pred, pred.bfloat16().float())
    # Same under autocast with float32 master weights (accelerate's bf16 mixed precision).
    x = torch.randn(B, 5, runner.model.hidden_size)
    head = runner.model.final_layer.float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert head(x).dtype == torch.float32
