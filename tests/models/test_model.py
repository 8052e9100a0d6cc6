"""RDT runner: released-checkpoint geometry, save/load round trips, loading errors, training aids."""
import json

import pytest
import torch

from configs.loader import load_config
from models.loading import (CheckpointError, build_runner, load_runner, runner_kwargs_from_config,
                            save_pretrained)
from models.rdt_runner import RDTRunner


@pytest.fixture(scope="module")
def tiny_cfg():
    return load_config("configs/tiny.yaml")


def make_inputs(runner: RDTRunner, batch=2, lang_len=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    kw = runner.init_kwargs
    H, D = kw["pred_horizon"], kw["action_dim"]
    mask = torch.zeros(batch, 1, D)
    mask[..., [10, 30, 31, 32, 33, 34, 35, 36, 37, 38]] = 1
    lang_mask = torch.ones(batch, lang_len, dtype=torch.bool)
    lang_mask[-1, -2:] = False
    return dict(
        lang_tokens=torch.randn(batch, lang_len, kw["lang_token_dim"], generator=g),
        lang_attn_mask=lang_mask,
        img_tokens=torch.randn(batch, kw["img_cond_len"], kw["img_token_dim"], generator=g),
        state_tokens=torch.randn(batch, 1, D, generator=g) * mask,
        action_mask=mask,
        ctrl_freqs=torch.tensor([20.0] * batch),
    ), torch.randn(batch, H, D, generator=g) * mask


def test_rdt1b_state_dict_matches_released_checkpoint(fixtures_dir):
    manifest = json.loads((fixtures_dir / "rdt1b_state_dict_keys.json").read_text())
    cfg = load_config("configs/base.yaml")
    with torch.device("meta"):
        runner = build_runner(cfg, dtype=torch.bfloat16)
    sd = runner.state_dict()
    expected = manifest["keys"]
    assert list(sd) == list(expected), "key order / names differ from the released runner"
    for key, (shape, dtype) in expected.items():
        assert list(sd[key].shape) == shape, key
        assert str(sd[key].dtype).replace("torch.", "") == dtype, key
    assert len(sd) == manifest["num_tensors"] == 618
    assert sum(v.numel() for v in sd.values()) == manifest["num_parameters"] == 1_228_319_872


def test_save_then_load_gives_identical_outputs(tmp_path, tiny_cfg):
    torch.manual_seed(0)
    runner = build_runner(tiny_cfg).eval()
    # Perturb the zero-initialised output layer so the comparison is not trivially zero.
    torch.nn.init.normal_(runner.model.final_layer.ffn_final.fc2.weight, std=0.1)
    save_pretrained(runner, tmp_path / "ckpt")
    loaded = load_runner(tmp_path / "ckpt").eval()
    inputs, _ = make_inputs(runner)
    noise = torch.randn(2, runner.pred_horizon, runner.action_dim, generator=torch.Generator().manual_seed(1))
    a = runner.predict_action(**inputs, noise=noise)
    b = loaded.predict_action(**inputs, noise=noise)
    assert a.abs().sum() > 0
    assert torch.equal(a, b)
    # The saved config.json is the official flat layout.
    cfg = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert cfg["pred_horizon"] == runner.pred_horizon and "rdt" in cfg and "noise_scheduler" in cfg


def test_load_deepspeed_model_states_and_bare_weights(tmp_path, tiny_cfg):
    torch.manual_seed(1)
    runner = build_runner(tiny_cfg)
    ds_file = tmp_path / "checkpoint-10" / "pytorch_model" / "mp_rank_00_model_states.pt"
    ds_file.parent.mkdir(parents=True)
    torch.save({"module": runner.state_dict(), "global_steps": 10}, ds_file)
    loaded = load_runner(ds_file, tiny_cfg)
    for k, v in runner.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k


def test_mismatched_weights_error_names_keys(tmp_path, tiny_cfg):
    runner = build_runner(tiny_cfg)
    sd = runner.state_dict()
    sd.pop("model.final_layer.ffn_final.fc2.bias")
    sd["lang_adaptor.0.weight"] = torch.zeros(3, 3)
    sd["extra.weight"] = torch.zeros(1)
    path = tmp_path / "bad.pt"
    torch.save(sd, path)
    with pytest.raises(CheckpointError) as err:
        load_runner(path, tiny_cfg)
    msg = str(err.value)
    assert "model.final_layer.ffn_final.fc2.bias" in msg and "extra.weight" in msg
    assert "lang_adaptor.0.weight" in msg and str(path) in msg


def test_missing_checkpoint_is_a_clear_error(tmp_path, tiny_cfg):
    with pytest.raises(CheckpointError, match="not found"):
        load_runner(tmp_path / "nope" / "checkpoint-5", tiny_cfg)


def test_random_init_from_config_and_kwargs(tiny_cfg):
    kw = runner_kwargs_from_config(tiny_cfg)
    assert kw["img_cond_len"] == 2 * 3 * tiny_cfg["model"]["img_tokens_per_image"]
    runner = load_runner(None, tiny_cfg)
    assert isinstance(runner, RDTRunner)


def test_gradient_checkpointing_gives_same_loss_and_grads(tiny_cfg):
    torch.manual_seed(0)
    runner = build_runner(tiny_cfg).train()
    # The output layer is zero-initialised: with it, every gradient but fc2's would be zero and the
    # comparison would check nothing. Give it weights so gradients reach every block.
    torch.nn.init.normal_(runner.model.final_layer.ffn_final.fc2.weight, std=0.1)
    inputs, actions = make_inputs(runner)
    noise = torch.randn_like(actions)
    t = torch.tensor([10, 700])

    def loss_and_grads():
        runner.zero_grad()
        loss = runner.compute_loss(action_gt=actions, noise=noise, timesteps=t, **inputs)
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in runner.parameters() if p.grad is not None]

    l1, g1 = loss_and_grads()
    runner.gradient_checkpointing_enable()
    l2, g2 = loss_and_grads()
    assert torch.equal(l1, l2)
    assert len(g1) == len(g2) == sum(1 for _ in runner.parameters())
    zero = [n for (n, _), g in zip(runner.named_parameters(), g1) if not g.abs().max() > 0]
    assert not zero, f"gradients that are all zero (the comparison would not see them): {zero}"
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_separate_state_and_action_masks(tiny_cfg):
    """Actions may live in slots that are not state slots: the sampler must not zero them."""
    torch.manual_seed(0)
    runner = build_runner(tiny_cfg).eval()
    torch.nn.init.normal_(runner.model.final_layer.ffn_final.fc2.weight, std=0.1)
    inputs, _ = make_inputs(runner, batch=1)
    action_mask = torch.zeros_like(inputs["action_mask"])
    action_mask[..., 39:45] = 1  # eef velocity slots
    out = runner.predict_action(**{**inputs, "action_mask": action_mask},
                                state_mask=inputs["action_mask"], generator=torch.Generator().manual_seed(0))
    assert out[..., 39:45].abs().sum() > 0
    assert out[..., 30:39].abs().sum() == 0


def test_cond_cache_matches_plain_sampling_on_tiny_config(tiny_cfg):
    torch.manual_seed(0)
    runner = build_runner(tiny_cfg).eval()
    torch.nn.init.normal_(runner.model.final_layer.ffn_final.fc2.weight, std=0.1)
    inputs, _ = make_inputs(runner)
    noise = torch.randn(2, runner.pred_horizon, runner.action_dim)
    a = runner.predict_action(**inputs, noise=noise, use_cond_cache=False)
    b = runner.predict_action(**inputs, noise=noise, use_cond_cache=True)
    torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)


def test_sampling_with_generator_is_reproducible(tiny_cfg):
    runner = build_runner(tiny_cfg).eval()
    torch.nn.init.normal_(runner.model.final_layer.ffn_final.fc2.weight, std=0.1)
    inputs, _ = make_inputs(runner)
    a = runner.predict_action(**inputs, generator=torch.Generator().manual_seed(3))
    b = runner.predict_action(**inputs, generator=torch.Generator().manual_seed(3))
    c = runner.predict_action(**inputs, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def _sampling_runner(cfg):
    """A random tiny runner whose output layer is not zero, its inputs, actions, noise and eager chunk."""
    torch.manual_seed(0)
    runner = build_runner(cfg).eval()
    torch.nn.init.normal_(runner.model.final_layer.ffn_final.fc2.weight, std=0.1)
    inputs, actions = make_inputs(runner)
    noise = torch.randn(2, runner.pred_horizon, runner.action_dim)
    return runner, inputs, actions, noise, runner.predict_action(**inputs, noise=noise)


@pytest.mark.slow
def test_torch_compile_matches_eager_and_keeps_keys(tiny_cfg):
    """The DiT compiles (nn.Module.compile keeps state_dict keys, so checkpoints stay compatible)."""
    runner, inputs, actions, noise, eager = _sampling_runner(tiny_cfg)
    keys = list(runner.state_dict())
    runner.model.compile()
    compiled = runner.predict_action(**inputs, noise=noise)
    torch.testing.assert_close(compiled, eager, atol=1e-5, rtol=1e-5)
    assert list(runner.state_dict()) == keys
    runner.train()
    loss = runner.compute_loss(action_gt=actions, **inputs)
    loss.backward()
    assert torch.isfinite(loss) and runner.model.blocks[0].attn.qkv.weight.grad is not None


@pytest.mark.slow
def test_compile_for_inference_samples_through_the_compiled_graph(tiny_cfg):
    """The compiled sampler gives the eager chunk, leaves state_dict alone, really is what samples in
    eval mode (dynamo captures graphs) with the weights frozen into it; switched off, sampling is
    eager again."""
    from torch._dynamo.utils import counters
    from torch._inductor.utils import run_and_get_code

    runner, inputs, actions, noise, eager = _sampling_runner(tiny_cfg)
    keys = list(runner.state_dict())
    runner.compile_for_inference()
    counters.clear()
    compiled, code = run_and_get_code(lambda: runner.predict_action(**inputs, noise=noise))
    assert counters["stats"]["unique_graphs"] >= 2  # the K/V precompute and the denoising step
    if torch._C.has_mkl:  # frozen weights: the linears are MKL packed GEMMs, not addmm
        assert "_mkl_linear" in "\n".join(code)
    torch.testing.assert_close(compiled, eager, atol=1e-5, rtol=1e-5)
    assert list(runner.state_dict()) == keys
    runner.train()  # training uses the module itself
    counters.clear()
    assert runner.compute_loss(action_gt=actions, **inputs).requires_grad
    assert counters["stats"]["calls_captured"] == 0
    runner.eval()
    runner.compile_for_inference(False)
    counters.clear()
    torch.testing.assert_close(runner.predict_action(**inputs, noise=noise), eager)
    assert counters["stats"]["calls_captured"] == 0


def test_unreachable_hub_id_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as hc
    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", True)
    with pytest.raises(CheckpointError, match="neither a local path nor reachable"):
        load_runner("robotics-diffusion-transformer/rdt-1b")


# ------------------------------------------------------------------ the blocks' norm
def timm_103_rms_norm(x, weight, eps=1e-6):
    """timm 1.0.3's ``rms_norm`` as it is written there (variance, not mean square)."""
    return x * torch.rsqrt(torch.var(x, dim=-1, keepdim=True) + eps) * weight


def test_release_norm_is_timm_103_and_computed_in_float32():
    from models.rdt.blocks import RDTNorm

    g = torch.Generator().manual_seed(0)
    norm = RDTNorm(64, "release_var")
    torch.nn.init.normal_(norm.weight, 1.0, 0.2, generator=g)
    x = torch.randn(3, 7, 64, generator=g) * 2 + 0.7  # non-zero mean: where the two norms differ
    with torch.no_grad():
        torch.testing.assert_close(norm(x), timm_103_rms_norm(x, norm.weight), atol=1e-6, rtol=1e-6)
        # A bf16 input (and bf16 autocast) gets the float32 result rounded once, not a bf16 variance.
        ref = timm_103_rms_norm(x.bfloat16().float(), norm.weight).bfloat16()
        assert torch.equal(norm(x.bfloat16()), ref)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert torch.equal(norm(x.bfloat16()), ref)
        rms = RDTNorm(64, "rms")
        rms.weight.copy_(norm.weight)
        assert (rms(x) - norm(x)).abs().max() > 0.05


def test_unknown_norm_is_a_clear_error(tiny_cfg):
    cfg = json.loads(json.dumps(tiny_cfg))
    cfg["model"]["rdt"]["norm"] = "layernorm"
    with pytest.raises(ValueError, match=r"model\.rdt\.norm must be one of \('release_var', 'rms'\)"):
        build_runner(cfg)


def test_checkpoint_records_its_norm_and_legacy_ones_load_with_the_right_one(tmp_path, tiny_cfg, caplog):
    from models.loading import runner_kwargs_from_json

    runner = build_runner(tiny_cfg)
    save_pretrained(runner, tmp_path / "ckpt")
    saved = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert saved["rdt"]["norm"] == tiny_cfg["model"]["rdt"]["norm"] == "release_var"
    assert load_runner(tmp_path / "ckpt").model.blocks[0].norm1.kind == "release_var"
    # Saved before the field existed: this repo's geometries used a true RMSNorm ...
    del saved["rdt"]["norm"]
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(saved))
    assert load_runner(tmp_path / "ckpt").model.final_layer.norm_final.kind == "rms"
    # ... while the released RDT-1B (its config.json has no norm field) needs timm 1.0.3's norm.
    released = {**saved, "rdt": {"hidden_size": 2048, "depth": 28, "num_heads": 32}}
    with caplog.at_level("INFO", logger="models.loading"):
        kwargs = runner_kwargs_from_json(released, "rdt-1b/config.json")
    assert kwargs["config"]["rdt"]["norm"] == "release_var"
    assert "rdt-1b/config.json records no rdt.norm: loading with norm=release_var" in caplog.text


def test_active_slot_loss_is_the_masked_mse(tiny_cfg):
    torch.manual_seed(0)
    runner = build_runner(tiny_cfg).eval()
    torch.nn.init.normal_(runner.model.final_layer.ffn_final.fc2.weight, std=0.1)
    inputs, actions = make_inputs(runner)
    noise, t = torch.randn_like(actions), torch.tensor([10, 700])
    with torch.no_grad():
        plain = runner.compute_loss(action_gt=actions, noise=noise, timesteps=t, **inputs)
        loss, active = runner(action_gt=actions, noise=noise, timesteps=t, return_active=True, **inputs)
    assert torch.equal(plain, loss)
    # the full-width mean = (active part + inactive part) / 128: recompute the active part from it
    mask = inputs["action_mask"].expand_as(actions).bool()
    n_active = mask.sum()
    assert 0 < n_active < actions.numel()
    assert float(active) * float(n_active) <= float(loss) * actions.numel() + 1e-4
    assert float(active) > float(loss)  # the used slots carry the error; the mean dilutes it
    # with every slot used, the two are the same number
    full = {**inputs, "action_mask": torch.ones_like(inputs["action_mask"]), "state_mask": inputs["action_mask"]}
    with torch.no_grad():
        loss_all, active_all = runner(action_gt=actions, noise=noise, timesteps=t, return_active=True, **full)
    torch.testing.assert_close(active_all, loss_all, rtol=1e-6, atol=0)


def test_loss_weight_scales_only_the_weighted_slots(tiny_cfg):
    """A per-slot loss weight multiplies those slots' squared error and nothing else; the active-slot
    metric stays the unweighted one (comparable across runs)."""
    torch.manual_seed(0)
    runner = build_runner(tiny_cfg).eval()
    torch.nn.init.normal_(runner.model.final_layer.ffn_final.fc2.weight, std=0.1)
    inputs, actions = make_inputs(runner)
    noise, t = torch.randn_like(actions), torch.tensor([10, 700])
    dim = actions.shape[-1]
    slots = [30, 31, 32]
    weight = torch.ones(dim)
    weight[slots] = 100.0
    with torch.no_grad():
        plain, active = runner(action_gt=actions, noise=noise, timesteps=t, return_active=True, **inputs)
        ones = runner(action_gt=actions, noise=noise, timesteps=t, loss_weight=torch.ones(dim), **inputs)
        weighted, active_w = runner(action_gt=actions, noise=noise, timesteps=t, return_active=True,
                                    loss_weight=weight, **inputs)
        pred_sq = weighted * actions.numel()  # sum of the weighted squared errors
    torch.testing.assert_close(ones, plain, rtol=1e-6, atol=0)
    assert torch.equal(active_w, active)
    # the weighted sum = plain sum + 99 x the three slots' sum: recover the slots' share and check it
    slot_sum = (pred_sq - plain * actions.numel()) / 99.0
    assert 0 < float(slot_sum) < float(plain) * actions.numel()
    only = torch.zeros(dim)
    only[slots] = 1.0
    with torch.no_grad():
        slot_loss = runner(action_gt=actions, noise=noise, timesteps=t, loss_weight=only, **inputs)
    torch.testing.assert_close(slot_loss * actions.numel(), slot_sum, rtol=1e-4, atol=1e-6)
