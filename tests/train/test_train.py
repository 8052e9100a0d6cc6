"""Training: exact resume, crash-safe checkpoints, pruning, NaN stop, LoRA, DeepSpeed on CPU.

The runs are real `main_sft.py` processes on the tiny config; faults are real SIGKILLs injected with
RDT_FAULT (utils/faults.py).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from train import checkpointing as ckpt
from train.sampler import EpochSampler

REPO = Path(__file__).resolve().parents[2]


def read_losses(run_dir: Path) -> dict[int, float]:
    losses = {}
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if "loss" in rec:
            losses[rec["step"]] = rec["loss"]  # a resumed run rewrites the steps it repeats
    return losses


@pytest.fixture(scope="module")
def run_train(tiny_encoders_dir, fixture_suite):
    def run(out_dir: Path, *extra: str, fault: str = "", launcher=(sys.executable,), check=True,
            suites=None, stats=None, timeout=600):
        cmd = [*launcher, str(REPO / "main_sft.py"), "--config_path", "configs/tiny.yaml",
               "--set", f"model.vision_encoder={tiny_encoders_dir / 'siglip'}",
               f"model.text_encoder={tiny_encoders_dir / 't5'}",
               f"dataset.datasets_config={suites or fixture_suite['suites']}",
               f"dataset.stats_path={stats or fixture_suite['stats']}",
               "--output_dir", str(out_dir), "--report_to", "none", "--train_batch_size", "4",
               "--learning_rate", "1e-3", "--seed", "7", "--log_period", "1", "--image_aug",
               "--state_noise_snr", "40", *extra]
        env = {**os.environ, "RDT_FAULT": fault, "TOKENIZERS_PARALLELISM": "false"}
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"training failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        return proc
    return run


@pytest.fixture(scope="module")
def lora_base(tiny_encoders_dir, tmp_path_factory) -> Path:
    """A base for LoRA runs: random tiny weights with a non-zero output layer (a random RDT's is zero,
    so adapters on it get no gradient; main_sft refuses LoRA without a base)."""
    from scripts.bench_eval import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path_factory.mktemp("lora_base") / "base", tiny_encoders_dir)


def grad_norms(run_dir: Path) -> list[float]:
    return [json.loads(x)["grad_norm"] for x in (run_dir / "metrics.jsonl").read_text().splitlines()
            if "grad_norm" in json.loads(x)]


def test_lora_without_base_weights_is_refused(tmp_path, run_train):
    proc = run_train(tmp_path / "run", "--use_lora", "--max_train_steps", "1", check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert "--use_lora needs --pretrained_model_name_or_path" in last and "Traceback" not in proc.stderr


def test_epoch_sampler_visits_every_sample_once_and_resumes():
    s = EpochSampler(103, seed=3, drop_last_to=1)
    s.set_epoch(2)
    full = list(s)
    assert sorted(full) == list(range(103))
    s.set_epoch(2, skip=40)
    assert list(s) == full[40:]
    s.set_epoch(3)
    assert list(s) != full
    shards = [list(EpochSampler(100, seed=3, rank=r, world_size=4)) for r in range(4)]
    assert sorted(sum(shards, [])) == list(range(100))


def test_epoch_sampler_wraps_tiny_datasets_and_draws_by_weight():
    # 5 samples, batch 4 on 2 ranks: each rank needs 4 -> the permutation wraps around
    shards = [EpochSampler(5, seed=1, rank=r, world_size=2, drop_last_to=4).epoch_indices(0) for r in range(2)]
    assert [len(s) for s in shards] == [4, 4] and set(np.concatenate(shards)) == set(range(5))
    # weighted: index 0 carries 90% of the mass; draws are reproducible per (seed, epoch) and resumable
    w = np.array([0.9] + [0.1 / 9] * 9)
    s = EpochSampler(10, w, seed=2)
    drawn = np.concatenate([s.epoch_indices(e) for e in range(50)])
    assert abs((drawn == 0).mean() - 0.9) < 0.05
    s.set_epoch(3, skip=4)
    assert list(s) == s.epoch_indices(3)[4:].tolist() and len(s) == 6


# 210 samples in batches of 32, 2 batches per step: 3 steps per epoch, so the kill after step 4 and the
# resume from step 3 sit on both sides of an epoch boundary; the LR is still warming up; 2 workers load.
RESUME_RECIPE = ("--max_train_steps", "6", "--checkpointing_period", "3", "--train_batch_size", "32",
                 "--gradient_accumulation_steps", "2", "--lr_scheduler", "constant_with_warmup",
                 "--lr_warmup_steps", "5", "--dataloader_num_workers", "2")


def test_exact_resume_after_sigkill(tmp_path, run_train):
    straight = tmp_path / "straight"
    run_train(straight, *RESUME_RECIPE)
    killed = tmp_path / "killed"
    proc = run_train(killed, *RESUME_RECIPE, fault="kill@4", check=False)
    assert proc.returncode == -9, proc.stderr[-2000:]  # really SIGKILLed after step 4
    assert [s for s, _ in ckpt.complete_checkpoints(killed)] == [3]
    run_train(killed, *RESUME_RECIPE, "--resume_from_checkpoint", "latest")
    recs = [json.loads(line) for line in (straight / "metrics.jsonl").read_text().splitlines()]
    assert max(r.get("epoch", 0) for r in recs) == 1  # crossed an epoch boundary
    lrs = [r["lr"] for r in recs if "lr" in r]
    assert lrs == sorted(lrs) and lrs[0] < lrs[-1]  # warming up
    a, b = read_losses(straight), read_losses(killed)
    assert sorted(a) == sorted(b) == [1, 2, 3, 4, 5, 6]
    for step in range(1, 7):
        assert a[step] == b[step], f"step {step}: {a[step]} != {b[step]}"
    # The final weights are identical too.
    wa = ckpt.complete_checkpoints(straight)[-1][1] / "model.safetensors"
    wb = ckpt.complete_checkpoints(killed)[-1][1] / "model.safetensors"
    from safetensors.torch import load_file
    sa, sb = load_file(str(wa)), load_file(str(wb))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_kill_while_writing_checkpoint_keeps_previous(tmp_path, run_train):
    out = tmp_path / "run"
    proc = run_train(out, "--max_train_steps", "6", "--checkpointing_period", "2",
                     fault="kill_in_checkpoint@4", check=False)
    assert proc.returncode == -9
    assert (out / "checkpoint-4.tmp").is_dir() and not (out / "checkpoint-4").exists()
    assert ckpt.resolve_resume("latest", out).name == "checkpoint-2"
    from models.loading import load_runner
    runner = load_runner(out / "checkpoint-2")  # the previous checkpoint is intact and loadable
    assert sum(p.numel() for p in runner.parameters()) > 0
    run_train(out, "--max_train_steps", "6", "--checkpointing_period", "2", "--resume_from_checkpoint", "latest")
    assert not (out / "checkpoint-4.tmp").exists()
    assert [s for s, _ in ckpt.complete_checkpoints(out)] == [2, 4, 6]


def test_pruning_keeps_newest(tmp_path, run_train):
    out = tmp_path / "run"
    run_train(out, "--max_train_steps", "5", "--checkpointing_period", "1", "--checkpoints_total_limit", "2")
    assert [s for s, _ in ckpt.complete_checkpoints(out)] == [4, 5]


def test_non_finite_loss_stops_with_message(tmp_path, run_train):
    out = tmp_path / "run"
    proc = run_train(out, "--max_train_steps", "6", "--checkpointing_period", "2", fault="nan_loss@3", check=False)
    assert proc.returncode == 3
    assert "non-finite loss" in proc.stderr and "checkpoint-2" in proc.stderr
    assert [s for s, _ in ckpt.complete_checkpoints(out)] == [2]
    # the NaN went through backward into the weights of the live model, not into the last checkpoint
    from safetensors.torch import load_file
    assert all(torch.isfinite(t).all() for t in load_file(str(out / "checkpoint-2" / "model.safetensors")).values())


def test_sampling_metrics_and_plot(tmp_path, run_train):
    out = tmp_path / "run"
    run_train(out, "--max_train_steps", "2", "--checkpointing_period", "2", "--sample_period", "2",
              "--sample_batch_size", "4", "--num_sample_batches", "1", "--run_name", f"test-{tmp_path.name}",
              "--set", "dataset.val_fraction=0.34")
    recs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    sampled = [r for r in recs if "overall_avg_sample_mse" in r]
    assert sampled and "val/overall_avg_sample_mse" in sampled[0] and "fix_sample_mse" in sampled[0]
    assert np.isfinite(sampled[0]["overall_avg_sample_mse"])
    for key in ("overall_avg_sample_l2err", "fix_sample_l2err", "val/overall_avg_sample_l2err"):
        assert np.isfinite(sampled[0][key]) and sampled[0][key] > 0, key
    plot = REPO / "outs" / "videos" / f"test-{tmp_path.name}" / "step-0000002.png"
    assert plot.is_file() and plot.stat().st_size > 1000
    plot.unlink()
    plot.parent.rmdir()
    # The checkpoint carries everything evaluation needs.
    train_cfg = json.loads((out / "checkpoint-2" / "train_config.json").read_text())
    assert train_cfg["config"]["dataset"]["action_encoding"] == "abs_goal"
    assert train_cfg["data"] == {"suites": ["fix"], "image_hw": [[128, 128]],
                                 "instructions": {"put_the_bowl_on_the_stove": "put the bowl on the stove"}}
    # ... and the launch's paths by field name (configs/launch.py), not the raw flags
    from configs.launch import LaunchSettings

    assert "args" not in train_cfg
    launch = LaunchSettings.from_record(train_cfg)
    assert launch.output_dir == str(out) and launch.config_path == "configs/tiny.yaml"
    assert launch.pretrained_model is None and launch.overrides[0].startswith("model.vision_encoder=")


def test_lora_adapter_is_small_and_merge_matches(tmp_path, run_train, tiny_encoders_dir):
    full = tmp_path / "full"
    run_train(full, "--max_train_steps", "2", "--checkpointing_period", "2")
    lora = tmp_path / "lora"
    run_train(lora, "--max_train_steps", "3", "--checkpointing_period", "3", "--use_lora", "--lora_rank", "4",
              "--lora_alpha", "8", "--pretrained_model_name_or_path", str(full / "checkpoint-2"),
              "--learning_rate", "1e-2")
    ck = lora / "checkpoint-3"
    adapter = ck / "adapter_model.safetensors"
    assert adapter.is_file() and not (ck / "model.safetensors").exists()
    assert adapter.stat().st_size < 0.5 * (full / "checkpoint-2" / "model.safetensors").stat().st_size

    from models.loading import load_runner
    from models.lora import load_lora_runner
    merged = load_runner(ck).eval()                            # base + adapter, merged
    unmerged = load_lora_runner(ck, merge=False).eval()        # base + adapter, as trained
    base = load_runner(full / "checkpoint-2").eval()
    trainable = sum(p.numel() for n, p in unmerged.named_parameters() if "lora_" in n)
    total = sum(p.numel() for p in base.parameters())
    assert 0 < trainable < 0.3 * total
    kw = base.init_kwargs
    g = torch.Generator().manual_seed(0)
    mask = torch.zeros(1, 1, 128)
    mask[..., [10] + list(range(30, 39))] = 1
    inputs = dict(lang_tokens=torch.randn(1, 5, kw["lang_token_dim"], generator=g),
                  lang_attn_mask=torch.ones(1, 5, dtype=torch.bool),
                  img_tokens=torch.randn(1, kw["img_cond_len"], kw["img_token_dim"], generator=g),
                  state_tokens=torch.randn(1, 1, 128, generator=g) * mask, action_mask=mask,
                  ctrl_freqs=torch.tensor([20.0]), noise=torch.randn(1, 64, 128, generator=g))
    a = merged.predict_action(**inputs)
    b = unmerged.predict_action(**inputs)
    c = base.predict_action(**inputs)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(a, c, atol=1e-4), "the adapter changed nothing"


@pytest.mark.slow
def test_deepspeed_zero2_via_torchrun_on_cpu(tmp_path, run_train):
    out = tmp_path / "ds"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "1",
                "--master_port", str(29650 + os.getpid() % 100)]
    run_train(out, "--max_train_steps", "3", "--checkpointing_period", "3", "--deepspeed", "configs/zero2.json",
              launcher=torchrun, timeout=900)
    losses = read_losses(out)
    assert sorted(losses) == [1, 2, 3] and all(np.isfinite(v) for v in losses.values())
    ck = ckpt.complete_checkpoints(out)[-1][1]
    from models.loading import load_runner
    load_runner(ck)  # the DeepSpeed run's checkpoint loads like any other


@pytest.mark.slow
@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_deepspeed_zero3_train_save_resume_sample_on_cpu(tmp_path, run_train, lora, lora_base):
    """ZeRO-3 partitions every parameter (the live tensors are empty shards): the frozen encoders must
    load whole, the position embeddings are used inside forward (also by the cached-K/V sampler),
    and the model / LoRA / EMA saves are gathered."""
    from safetensors.torch import load_file

    from models.loading import load_runner
    from models.lora import load_lora_runner

    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "1",
                "--master_port", str(29750 + os.getpid() % 100)]
    out = tmp_path / "z3"
    common = ("--deepspeed", "configs/zero3.json", "--use_ema", "--checkpointing_period", "2",
              "--sample_batch_size", "2", "--num_sample_batches", "1",
              *(("--use_lora", "--pretrained_model_name_or_path", str(lora_base)) if lora else ()))
    run_train(out, *common, "--max_train_steps", "2", launcher=torchrun, timeout=900)
    proc = run_train(out, *common, "--max_train_steps", "4", "--resume_from_checkpoint", "latest",
                     "--sample_period", "4", launcher=torchrun, timeout=900)
    assert "resumed from" in proc.stderr
    losses = read_losses(out)
    assert sorted(losses) == [1, 2, 3, 4] and all(np.isfinite(v) for v in losses.values())
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert any(np.isfinite(r.get("overall_avg_sample_mse", np.nan)) for r in records)  # the sampler ran
    ck = out / "checkpoint-4"
    weights = "adapter_model.safetensors" if lora else "model.safetensors"
    live, ema = load_file(str(ck / weights)), load_file(str(ck / "ema" / weights))
    assert live and all(v.numel() > 0 for v in live.values()), "a sharded (empty) tensor was saved"
    assert set(live) == set(ema) and all(ema[k].shape == live[k].shape for k in live)
    assert any(not torch.equal(live[k], ema[k]) for k in live), "the EMA save is the live model"
    runner = load_lora_runner(ck) if lora else load_runner(ck)
    if not lora:
        sd = runner.state_dict()
        assert all(torch.equal(sd[k], live[k]) for k in live)


@pytest.mark.slow
def test_two_processes_reach_the_effective_batch_and_resume_across_ranks(tmp_path, run_train):
    """torchrun with 2 CPU processes (gloo): accumulation from the process count, and a run resumed
    from a checkpoint both ranks wrote repeats the uninterrupted one."""
    port = 29550 + os.getpid() % 100
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port)]
    common = ("--train_batch_size", "4", "--effective_batch_size", "16", "--checkpointing_period", "2")
    straight = run_train(tmp_path / "straight", *common, "--max_train_steps", "4", launcher=torchrun, timeout=900)
    assert "effective batch 16 = 4 per device x 2 process(es) x 2 accumulation" in straight.stderr
    legs = tmp_path / "legs"
    run_train(legs, *common, "--max_train_steps", "2", launcher=torchrun, timeout=900)
    run_train(legs, *common, "--max_train_steps", "4", "--resume_from_checkpoint", "latest",
              launcher=torchrun, timeout=900)
    a, b = read_losses(tmp_path / "straight"), read_losses(legs)
    assert sorted(a) == sorted(b) == [1, 2, 3, 4]
    assert all(a[k] == b[k] for k in a), (a, b)
    from safetensors.torch import load_file
    wa = load_file(str(tmp_path / "straight" / "checkpoint-4" / "model.safetensors"))
    wb = load_file(str(legs / "checkpoint-4" / "model.safetensors"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_precomputed_language_embeddings(tmp_path, run_train, tiny_encoders_dir, fixture_suite):
    from policy.lang_embeddings import LangEmbeddingStore
    from scripts.preprocess_language_embeddings import main as preprocess

    store = tmp_path / "lang"
    preprocess(["--config", "configs/tiny.yaml", "--datasets_config", str(fixture_suite["suites"]),
                "--text_encoder", str(tiny_encoders_dir / "t5"), "--out", str(store)])
    s = LangEmbeddingStore(store, expected_dim=32)
    assert "put the bowl on the stove" in s and "" in s and s.get("put the bowl on the stove").ndim == 2
    out = tmp_path / "run"
    run_train(out, "--max_train_steps", "2", "--checkpointing_period", "2", "--precomp_lang_embed", str(store))
    assert sorted(read_losses(out)) == [1, 2]
    # A store of the wrong width (e.g. t5-base's 768 for a 4096-d model) is refused up front.
    proc = run_train(tmp_path / "bad", "--max_train_steps", "2", "--precomp_lang_embed", str(store),
                     "--set", "model.lang_token_dim=768", check=False)
    assert proc.returncode != 0 and "768" in proc.stderr and "32" in proc.stderr


def test_lora_resume_and_checkpoint_size(tmp_path, run_train, lora_base):
    """A LoRA checkpoint holds no copy of the base weights, and a LoRA run (that trains: non-zero
    gradients) resumes exactly."""
    common = ("--use_lora", "--lora_rank", "4", "--lora_alpha", "8", "--max_train_steps", "4",
              "--checkpointing_period", "2", "--learning_rate", "1e-2", "--pretrained_model_name_or_path", str(lora_base))
    straight, killed = tmp_path / "a", tmp_path / "b"
    run_train(straight, *common)
    proc = run_train(killed, *common, fault="kill@3", check=False)
    assert proc.returncode == -9
    run_train(killed, *common, "--resume_from_checkpoint", "latest")
    a, b = read_losses(straight), read_losses(killed)
    assert [a[s] for s in range(1, 5)] == [b[s] for s in range(1, 5)]
    assert all(g > 0 for g in grad_norms(straight)), grad_norms(straight)
    ck = killed / "checkpoint-4"
    base = (lora_base / "model.safetensors").stat().st_size
    total = sum(p.stat().st_size for p in ck.rglob("*") if p.is_file() and "optimizer" not in p.name)
    assert total < 0.5 * base, f"LoRA checkpoint without optimizer state is {total} B vs base {base} B"


@pytest.mark.sim
@pytest.mark.slow
def test_loss_decreases_on_simulator_demos(tmp_path, run_train, sim_demo_dir):
    """A short CPU run on demos rolled out in the LIBERO simulator: the loss must clearly drop."""
    from scripts.compute_dataset_stats import main as compute_stats

    suites = tmp_path / "suites.json"
    suites.write_text(json.dumps({"sim_goal": {"path": str(sim_demo_dir / "libero_goal"), "layout": "raw"}}))
    stats = tmp_path / "stats.json"
    compute_stats(["--datasets_config", str(suites), "--out", str(stats), "--config", "configs/tiny.yaml",
                   "--cache_dir", str(tmp_path / "cache")])
    out = tmp_path / "run"
    run_train(out, "--max_train_steps", "40", "--checkpointing_period", "40", "--train_batch_size", "8",
              suites=suites, stats=stats)
    losses = read_losses(out)
    first = np.mean([losses[s] for s in range(1, 6)])
    last = np.mean([losses[s] for s in range(36, 41)])
    assert last < 0.5 * first, f"loss did not drop enough: first 5 steps {first:.5f}, last 5 {last:.5f}"


def test_ema_copy_is_saved_loadable_and_resumable(tmp_path, run_train):
    out = tmp_path / "run"
    run_train(out, "--max_train_steps", "2", "--checkpointing_period", "2", "--use_ema")
    ck = out / "checkpoint-2"
    from models.loading import load_runner
    ema, live = load_runner(ck / "ema"), load_runner(ck)
    diffs = [not torch.equal(a, b) for a, b in zip(ema.state_dict().values(), live.state_dict().values())]
    assert any(diffs), "EMA weights equal the live weights"
    run_train(out, "--max_train_steps", "4", "--checkpointing_period", "2", "--use_ema",
              "--resume_from_checkpoint", "latest")
    # The resumed average equals the one of a straight run: the EMA state was restored, not restarted.
    straight = tmp_path / "straight"
    run_train(straight, "--max_train_steps", "4", "--checkpointing_period", "4", "--use_ema")
    a, b = load_runner(out / "checkpoint-4" / "ema"), load_runner(straight / "checkpoint-4" / "ema")
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name


def test_lora_ema_tracks_only_the_trained_parameters(tmp_path, run_train, lora_base):
    out = tmp_path / "run"
    proc = run_train(out, "--max_train_steps", "2", "--checkpointing_period", "2", "--use_ema", "--use_lora",
                     "--lora_rank", "4", "--lora_alpha", "8", "--pretrained_model_name_or_path", str(lora_base))
    from models.loading import load_runner
    from models.lora import apply_lora
    model = apply_lora(load_runner(lora_base), rank=4, alpha=8)  # what the run trained
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert 0 < len(trainable) < sum(1 for _ in model.parameters()) // 2
    assert f"EMA of {len(trainable)} trainable tensors" in proc.stderr
    assert (out / "checkpoint-2" / "ema" / "adapter_model.safetensors").is_file()


def test_bf16_mixed_precision_with_sampling(tmp_path, run_train):
    """The GPU recipe's dtype path (bf16 encoders and conditions, autocast) on the CPU."""
    out = tmp_path / "run"
    run_train(out, "--max_train_steps", "2", "--checkpointing_period", "2", "--mixed_precision", "bf16",
              "--sample_period", "2", "--sample_batch_size", "4", "--num_sample_batches", "1",
              "--set", "dataset.val_fraction=0.34")
    recs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["loss"]) for r in recs if "loss" in r)
    assert any(np.isfinite(r.get("val/overall_avg_sample_mse", np.nan)) for r in recs)


# ---------------------------------------------------- user mistakes end with one line, not a traceback
def assert_user_error(proc, *fragments):
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), last
    for fragment in fragments:
        assert fragment in last, last


def test_unknown_config_key_is_one_line(tmp_path, run_train):
    proc = run_train(tmp_path / "run", "--max_train_steps", "1", "--set", "dataset.action_encodng=delta",
                     check=False)
    assert_user_error(proc, "action_encodng", "action_encoding")  # names the key and the closest one


def test_statistics_for_another_encoding_are_refused(tmp_path, run_train, fixture_suite):
    proc = run_train(tmp_path / "run", "--max_train_steps", "1", "--set", "dataset.action_encoding=delta",
                     check=False)
    assert_user_error(proc, str(fixture_suite["stats"]), "action_encoding='abs_goal'", "'delta'")


def test_missing_dataset_folder_is_one_line(tmp_path, run_train):
    suites = tmp_path / "suites.json"
    suites.write_text(json.dumps({"fix": {"path": str(tmp_path / "nowhere"), "sample_weight": 1.0}}))
    proc = run_train(tmp_path / "run", "--max_train_steps", "1", suites=suites, check=False)
    assert_user_error(proc, str(tmp_path / "nowhere"))


def test_episodes_are_held_out_only_when_validation_runs(tmp_path, run_train):
    """val_fraction 0.04 of 3 demos holds out one (140 of 210 samples train) -- but only with sampling on."""
    no_val = run_train(tmp_path / "a", "--max_train_steps", "1", "--sample_period", "-1")
    assert "LiberoDataset: 210 samples" in no_val.stderr
    # the checkpoint records the exact instruction of every trained task (evaluation prompts with it)
    info = json.loads((tmp_path / "a" / "checkpoint-1" / "train_config.json").read_text())
    assert info["data"]["instructions"] == {"put_the_bowl_on_the_stove": "put the bowl on the stove"}
    with_val = run_train(tmp_path / "b", "--max_train_steps", "1", "--sample_period", "1",
                         "--sample_batch_size", "2", "--num_sample_batches", "1")
    assert "LiberoDataset: 140 samples" in with_val.stderr and "LiberoDataset: 70 samples" in with_val.stderr


def test_missing_encoder_is_one_line(tmp_path, run_train):
    proc = run_train(tmp_path / "run", "--max_train_steps", "1", "--pretrained_vision_encoder_name_or_path",
                     str(tmp_path / "no_siglip"), check=False)
    assert_user_error(proc, "cannot load the SigLIP vision encoder", str(tmp_path / "no_siglip"))


def test_encoder_of_the_wrong_size_is_one_line(tmp_path, run_train):
    """Training checks its encoders with the policy's loaders (evaluation's too): a SigLIP whose tokens
    do not fit the model is named with the config keys to change."""
    proc = run_train(tmp_path / "run", "--max_train_steps", "1", "--set", "model.img_token_dim=48", check=False)
    assert_user_error(proc, "vision encoder", "gives 16 tokens x 32", "model.img_token_dim=48")


def test_sample_metrics_values_and_split_across_ranks(fixture_suite):
    """mse and the official relative l2err of a prediction off by a known amount, computed on one
    process and as two ranks' shares summed (what accelerator.reduce does): the same numbers."""
    from configs.loader import fill_from_base
    from data.dataset import LiberoDataset
    from train.sample import fixed_subset, sample_mse

    ds = LiberoDataset(fill_from_base({}), fixture_suite["suites"], cache_dir=fixture_suite["root"] / "cache")
    off = 0.02

    class Policy:  # RDTPolicy's sampling interface, predicting every slot off by `off`
        device = torch.device("cpu")
        training = True

        def train(self, mode=True):
            self.training = mode

        def sample(self, batch, generator=None):
            return batch["actions"] + off

    one, _ = sample_mse(Policy(), ds, 3, 2)
    assert one["overall_avg_sample_mse"] == pytest.approx(off ** 2, rel=1e-5)
    subset = fixed_subset(ds, 6)
    expected = []
    for i in subset.indices:
        s = ds[i]
        mask = s["action_elem_mask"][None] * s["action_valid"][:, None]
        expected.append(((off / (s["action_norm"][None] + 1e-3)) * mask).sum() / mask.sum())
    n = [(ds[i]["action_elem_mask"][None] * ds[i]["action_valid"][:, None]).sum() for i in subset.indices]
    assert one["overall_avg_sample_l2err"] == pytest.approx(np.dot(expected, n) / np.sum(n), rel=1e-5)
    assert one["fix_sample_l2err"] == one["overall_avg_sample_l2err"]
    # each quantity's RMSE in its own units, from its own slots: position off by 0.01, rotation 0.02, gripper 0.3
    per_slot = torch.zeros(128)
    per_slot[[30, 31, 32]], per_slot[33:39], per_slot[10] = 0.01, 0.02, 0.3

    class PerSlot(Policy):
        def sample(self, batch, generator=None):
            return batch["actions"] + per_slot

    quantities, _ = sample_mse(PerSlot(), ds, 3, 2)
    for name, value in (("eef_position", 0.01), ("eef_rot6d", 0.02), ("gripper", 0.3)):
        assert quantities[f"overall_avg_{name}_rmse"] == pytest.approx(value, rel=1e-5)
    shares = []
    for rank in (0, 1):
        shares.append(None)

        def keep(t, rank=rank):
            shares[rank] = t.clone()
            return t
        sample_mse(Policy(), ds, 3, 2, rank=rank, world_size=2, reduce=keep)
    both = shares[0] + shares[1]
    split, _ = sample_mse(Policy(), ds, 3, 2, rank=0, world_size=2, reduce=lambda t: both)
    assert split == pytest.approx(one, rel=1e-9)
    assert sorted(fixed_subset(ds, 6, rank=0, world_size=2).indices + fixed_subset(ds, 6, rank=1, world_size=2).indices) \
        == sorted(subset.indices)
