"""Bad input and faults (issue 24): every user mistake ends with one ``error:`` line and status 2, no
traceback; no silent wrong setup, no hang, no race. One test (or more) per case of the issue."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch

from configs.errors import UserError, run_cli

REPO = Path(__file__).resolve().parents[1]


def one_error(rc: int, err: str, *fragments: str) -> str:
    """Status 2, no traceback, exactly one ``error:`` line (the last one) holding every fragment."""
    assert rc == 2, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    lines = [line for line in err.strip().splitlines() if "error:" in line]
    assert len(lines) == 1 and err.strip().splitlines()[-1] == lines[0], err[-3000:]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def cli(main, argv, capsys) -> tuple[int, str]:
    rc = run_cli(main, argv)
    return rc, capsys.readouterr().err


def main_sft(argv, capsys):
    import main_sft as m

    return cli(m.main, argv, capsys)


@pytest.fixture(scope="module")
def tiny_ckpt(tiny_encoders_dir, tmp_path_factory) -> Path:
    from scripts.bench_eval import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "run-a" / "checkpoint-1", tiny_encoders_dir)


# ------------------------------------------------------------------ 1, 8, 9: YAML and numbers
@pytest.mark.parametrize("override", ["train.lora_target_modules=[a", "eval.seed=[1"])
def test_yaml_syntax_error_in_set_is_one_line(override, capsys):
    rc, err = main_sft(["--config_path", "configs/tiny.yaml", "--set", override, "--print_config"], capsys)
    one_error(rc, err, f"--set {override}", "invalid YAML")


def test_yaml_syntax_error_in_a_preset_is_one_line(tmp_path, capsys):
    preset = tmp_path / "bad.yaml"
    preset.write_text(f"inherit: {REPO / 'configs' / 'tiny.yaml'}\ntrain:\n  learning_rate: [1e-4\n")
    rc, err = main_sft(["--config_path", str(preset), "--print_config"], capsys)
    one_error(rc, err, str(preset), "invalid YAML", "line")


def test_scientific_notation_without_a_dot_is_a_float(tmp_path, capsys):
    from configs.loader import load_typed

    assert load_typed("configs/tiny.yaml", ["train.learning_rate=1e-4"]).train.learning_rate == 1e-4
    preset = tmp_path / "p.yaml"
    preset.write_text(f"inherit: {REPO / 'configs' / 'tiny.yaml'}\ntrain:\n  learning_rate: 3E-5\n")
    assert load_typed(preset).train.learning_rate == 3e-5
    rc, err = main_sft(["--config_path", str(preset), "--print_config"], capsys)
    assert rc == 0, err


@pytest.mark.parametrize("flag,value", [("--learning_rate", "nan"), ("--learning_rate", "inf"),
                                        ("--max_grad_norm", "nan"), ("--state_noise_snr", "nan"),
                                        ("--cond_mask_prob", "nan"), ("--adam_epsilon", "-inf")])
def test_non_finite_numbers_are_refused(flag, value, capsys):
    rc, err = main_sft(["--config_path", "configs/tiny.yaml", f"{flag}={value}", "--print_config"], capsys)
    one_error(rc, err, flag.lstrip("-"), "finite")


@pytest.mark.parametrize("override,fragment", [("eval.step_timeout=.nan", "eval.step_timeout"),
                                               ("eval.seed=-1", "eval.seed"),
                                               ("train.learning_rate=-1e-4", "train.learning_rate"),
                                               ("train.train_batch_size=high", "train.train_batch_size")])
def test_negative_and_string_numbers_are_refused(override, fragment, capsys):
    rc, err = main_sft(["--config_path", "configs/tiny.yaml", "--set", override, "--print_config"], capsys)
    one_error(rc, err, fragment)


def test_config_path_that_is_a_folder(tmp_path, capsys):
    rc, err = main_sft(["--config_path", str(tmp_path), "--print_config"], capsys)
    one_error(rc, err, str(tmp_path), "is a folder")


# ------------------------------------------------------------------ 2: statistics
def test_statistics_without_the_suite_and_truncated_statistics(tmp_path, fixture_suite, capsys):
    from configs.loader import load_typed
    from train.train_sft import load_stats

    ds_cfg = load_typed("configs/tiny.yaml").dataset
    good = json.loads(fixture_suite["stats"].read_text())
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"libero_10": good["fix"]}))
    rc, err = cli(lambda a: load_stats(str(other), ["fix"], True, ds_cfg) and 0, None, capsys)
    one_error(rc, err, str(other), "'fix'", "compute_dataset_stats")
    truncated = tmp_path / "truncated.json"
    truncated.write_text(fixture_suite["stats"].read_text()[:500])
    rc, err = cli(lambda a: load_stats(str(truncated), ["fix"], True, ds_cfg) and 0, None, capsys)
    one_error(rc, err, str(truncated), "not valid JSON")
    short = tmp_path / "short.json"
    short.write_text(json.dumps({"fix": {**good["fix"], "state_std": [1.0] * 7}}))
    rc, err = cli(lambda a: load_stats(str(short), ["fix"], True, ds_cfg) and 0, None, capsys)
    one_error(rc, err, "fix.state_std", "128")


# ------------------------------------------------------------------ 3, 13: a checkpoint that does not load
def test_truncated_safetensors_is_one_line_and_leaves_no_run(tiny_ckpt, tmp_path, capsys):
    from libero_eval import eval_rdt_libero as ev

    bad = tmp_path / "run-b" / "checkpoint-1"
    shutil.copytree(tiny_ckpt, bad)
    weights = bad / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    argv = ["--checkpoint", str(bad), "--task_ids", "0", "--num_trials", "1", "--run_name", "r",
            "--out_root", str(tmp_path / "outs")]
    rc, err = cli(ev.main, argv, capsys)
    one_error(rc, err, str(weights), "truncated or corrupt")
    # run.json is written only once the policy has loaded: the failed attempt left no settings behind
    assert not (tmp_path / "outs" / "metrics" / "r" / "run.json").exists()
    # ... so the fixed checkpoint's settings are not refused as "evaluated with other settings"
    from libero_eval.metrics import RUN_SETTINGS

    ev.check_run_settings(tmp_path / "outs" / "metrics" / "r", {k: "any" for k in RUN_SETTINGS}, record=False)


# ------------------------------------------------------------------ 4: the datasets table
@pytest.mark.parametrize("table,fragment", [
    ([{"path": "x"}], "expected a JSON object"),
    ({"fix": {"path": "x", "sample_weight": "high"}}, "sample_weight is 'high'"),
    ({"fix": {"path": "x", "sample_weight": float("nan")}}, "sample_weight is nan"),
    ({"fix": {"path": "x", "layuot": "raw"}}, "did you mean 'layout'"),
    ({"fix": {"path": 3}}, "path is 3"),
])
def test_datasets_table_shape_types_and_unknown_keys(table, fragment, tmp_path, capsys):
    from scripts.compute_dataset_stats import main as stats_main

    suites = tmp_path / "suites.json"
    suites.write_text(json.dumps(table))
    rc, err = cli(stats_main, ["--datasets_config", str(suites), "--out", str(tmp_path / "s.json"),
                               "--config", "configs/tiny.yaml"], capsys)
    one_error(rc, err, str(suites), fragment)


# ------------------------------------------------------------------ 5 and the path class
def test_output_dir_that_is_a_file(tmp_path, capsys):
    out = tmp_path / "file"
    out.write_text("x")
    rc, err = main_sft(["--config_path", "configs/tiny.yaml", "--output_dir", str(out)], capsys)
    one_error(rc, err, "--output_dir", str(out), "is a file")
    rc, err = main_sft(["--config_path", "configs/tiny.yaml", "--output_dir", str(out / "sub")], capsys)
    one_error(rc, err, "--output_dir", f"{out} is a file")


def test_eval_path_arguments_of_the_wrong_kind(tiny_ckpt, tmp_path, capsys):
    from libero_eval import eval_rdt_libero as ev

    a_file = tmp_path / "f"
    a_file.write_text("x")
    rc, err = cli(ev.main, ["--checkpoint", str(tiny_ckpt), "--task_ids", "0", "--out_root", str(a_file)], capsys)
    one_error(rc, err, "--out_root", "is a file")
    rc, err = cli(ev.main, ["--policy", "replay", "--demo_file", str(tmp_path)], capsys)
    one_error(rc, err, "--demo_file", "is a folder")
    rc, err = cli(ev.main, ["--checkpoint", str(tiny_ckpt), "--config", str(tmp_path), "--out_root", str(tmp_path)],
                  capsys)
    one_error(rc, err, "--config", "is a folder")


def test_stats_out_that_is_a_folder(fixture_suite, tmp_path, capsys):
    from scripts.compute_dataset_stats import main as stats_main

    rc, err = cli(stats_main, ["--datasets_config", str(fixture_suite["suites"]), "--out", str(tmp_path),
                               "--config", "configs/tiny.yaml", "--cache_dir", str(tmp_path / "c")], capsys)
    one_error(rc, err, "--out", "is a folder")


# ------------------------------------------------------------------ 6: full disk during a checkpoint
def test_full_disk_during_a_checkpoint_says_so(tmp_path, tiny_encoders_dir, fixture_suite):
    """A real small filesystem (tmpfs in a private mount namespace): the first checkpoint fits, the
    second does not."""
    out = tmp_path / "small"
    out.mkdir()
    train = [sys.executable, str(REPO / "main_sft.py"), "--config_path", "configs/tiny.yaml",
             "--set", f"model.vision_encoder={tiny_encoders_dir / 'siglip'}",
             f"model.text_encoder={tiny_encoders_dir / 't5'}", f"dataset.datasets_config={fixture_suite['suites']}",
             f"dataset.stats_path={fixture_suite['stats']}", "--output_dir", str(out / "run"), "--report_to", "none",
             "--train_batch_size", "2", "--max_train_steps", "2", "--checkpointing_period", "1",
             "--sample_period", "-1"]
    unshare = ["unshare", "-m"] if os.geteuid() == 0 else ["unshare", "-rm"]
    script = f'mount -t tmpfs -o size=5m tmpfs "{out}" && exec "$@"'
    proc = subprocess.run([*unshare, "sh", "-c", script, "sh", *train], cwd=REPO, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    one_error(proc.returncode, proc.stderr, "no space left", "checkpoint-2", "checkpoint-1")


# ------------------------------------------------------------------ 7: a data file that disappears
def test_data_file_removed_during_training_is_one_line(tmp_path, libero_fixture_file, capsys):
    from torch.utils.data import DataLoader

    from configs.loader import fill_from_base
    from data.dataset import LiberoDataset
    from data.libero_hdf5 import LiberoDataError
    from policy.batch import collate

    folder = tmp_path / "suite"
    folder.mkdir()
    shutil.copy(libero_fixture_file, folder / libero_fixture_file.name)
    ds = LiberoDataset(fill_from_base({}), {"fix": {"path": str(folder), "layout": "raw"}}, cache_dir=tmp_path / "cache")
    (folder / libero_fixture_file.name).unlink()
    loader = DataLoader(ds, batch_size=2, num_workers=1, collate_fn=collate)

    def first_batch(argv):
        next(iter(loader))
        return 0

    with pytest.raises(LiberoDataError):  # the worker's error keeps its class (not a RuntimeError)
        first_batch(None)
    rc, err = cli(first_batch, None, capsys)
    one_error(rc, err, libero_fixture_file.name, "file not found")
    assert "truncated" not in err


# ------------------------------------------------------------------ 10: language embeddings of another encoder
def test_language_store_of_another_text_encoder_is_refused(tmp_path, tiny_ckpt, fixture_suite):
    from configs.loader import load_typed
    from policy.lang_embeddings import LangEmbeddingError, write_lang_embedding_store
    from policy.rdt_policy import RDTPolicy
    from configs.launch import LaunchSettings
    from train.train_sft import build_datasets

    store = tmp_path / "lang"
    write_lang_embedding_store(store, {"put the bowl on the stove": torch.randn(5, 32), "": torch.randn(1, 32)},
                               model="google/flan-t5-tiny")
    cfg = load_typed("configs/tiny.yaml", [f"dataset.datasets_config={fixture_suite['suites']}",
                                           "model.text_encoder=google/t5-v1_1-tiny", "train.sample_period=-1"])
    with pytest.raises(LangEmbeddingError, match="made by google/flan-t5-tiny.*model.text_encoder is google/t5"):
        build_datasets(LaunchSettings(lang_embed_dir=str(store)), cfg)
    with pytest.raises(LangEmbeddingError, match="made by google/flan-t5-tiny"):
        RDTPolicy.from_pretrained(tiny_ckpt, "cpu", lang_embed_dir=store)


# ------------------------------------------------------------------ 11: pretrained weights of another geometry
def test_pretrained_checkpoint_of_another_geometry_is_refused(tmp_path, capsys):
    from configs.loader import load_typed
    from models.loading import CheckpointError, build_runner, load_runner, save_pretrained

    other = tmp_path / "deep"
    save_pretrained(build_runner(load_typed("configs/tiny.yaml", ["model.rdt.depth=3"])), other)
    with pytest.raises(CheckpointError, match=r"model.rdt.depth: checkpoint 3, config 4"):
        load_runner(other, load_typed("configs/tiny.yaml"))
    assert load_runner(other, load_typed("configs/tiny.yaml", ["model.rdt.depth=3"])) is not None


# ------------------------------------------------------------------ 12: resuming with another recipe
def _checkpoint_with(cfg, tmp_path) -> Path:
    ck = tmp_path / "out" / "checkpoint-2"
    ck.mkdir(parents=True)
    (ck / "trainer_state.json").write_text(json.dumps({"global_step": 2, "epoch": 0, "batch_in_epoch": 2}))
    (ck / "train_config.json").write_text(json.dumps({"args": {}, "config": cfg.to_dict()}))
    return ck


def test_resume_refuses_another_data_position_and_logs_other_changes(tmp_path, caplog):
    from configs.loader import load_typed
    from configs.schema import ConfigError
    from train.train_sft import check_resume_config

    def resolved(*overrides):
        cfg = load_typed("configs/tiny.yaml", overrides)
        cfg.train.effective_batch_size = cfg.train.train_batch_size * cfg.train.gradient_accumulation_steps
        return cfg

    _checkpoint_with(resolved("train.train_batch_size=4"), tmp_path)
    with pytest.raises(ConfigError, match=r"train.train_batch_size 4 -> 8"):
        check_resume_config("latest", resolved("train.train_batch_size=8"), tmp_path / "out", 1)
    with pytest.raises(ConfigError, match=r"model.rdt.depth 4 -> 3"):
        check_resume_config("latest", resolved("train.train_batch_size=4", "model.rdt.depth=3"), tmp_path / "out", 1)
    with pytest.raises(ConfigError, match=r"processes 1 -> 2"):
        check_resume_config("latest", resolved("train.train_batch_size=4"), tmp_path / "out", 2)
    caplog.set_level("WARNING")
    check_resume_config("latest", resolved("train.train_batch_size=4", "train.learning_rate=5e-5",
                                       "dataset.cond_mask_prob=0.3"), tmp_path / "out", 1)
    logged = caplog.text
    assert "train.learning_rate changed" in logged and "dataset.cond_mask_prob changed" in logged


# ------------------------------------------------------------------ 14: two evaluations into one run at once
@pytest.mark.slow
@pytest.mark.sim
@pytest.mark.parametrize("other_settings", [False, True], ids=["same", "other"])
def test_two_evaluations_started_at_once_never_mix_or_duplicate(tiny_ckpt, tmp_path, other_settings):
    from libero_eval.metrics import latest_rows, read_rows, trial_key

    base = [sys.executable, "-m", "libero_eval.eval_rdt_libero", "--checkpoint", str(tiny_ckpt),
            "--suite", "libero_goal", "--task_ids", "1", "--num_trials", "2", "--max_steps", "3",
            "--num_steps_wait", "0", "--video", "none", "--run_name", "both", "--out_root", str(tmp_path),
            "--no_progress"]
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    procs = [subprocess.Popen(base + ["--exec_horizon", "8" if other_settings and i else "16"], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    results = [(p.wait(timeout=600), p.stderr.read()) for p in procs]
    for rc, err in results:
        assert rc in (0, 2), err[-3000:]
        if rc == 2:
            one_error(rc, err)
            assert "another process" in err or "other settings" in err, err[-2000:]
    rows = read_rows(tmp_path / "metrics" / "both" / "trials.csv")
    assert len(rows) == len(latest_rows(rows)) == 2  # no trial twice
    assert len({trial_key(r) for r in rows}) == 2
    assert len({r["exec_horizon"] for r in rows}) == 1  # never two settings in one run
    recorded = json.loads((tmp_path / "metrics" / "both" / "run.json").read_text())["settings"]
    assert str(recorded["exec_horizon"]) == rows[0]["exec_horizon"]
    if other_settings:
        assert sorted(rc for rc, _ in results) == [0, 2]


def test_a_claimed_task_is_refused_to_a_second_process(tmp_path):
    """The lock itself, across processes: while one holds a task of the run, another is told so."""
    from libero_eval.metrics import RunBusyError, claim_task

    mdir = tmp_path / "run"
    code = ("import sys, time; from pathlib import Path; from libero_eval.metrics import claim_task; "
            "f = claim_task(Path(sys.argv[1]), 'libero_goal', 1); print('claimed', flush=True); time.sleep(30)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(mdir)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "claimed"
        with pytest.raises(RunBusyError, match="libero_goal task 1 is being evaluated by another process"):
            claim_task(mdir, "libero_goal", 1)
        claim_task(mdir, "libero_goal", 2).close()  # another task of the run is free
    finally:
        holder.kill()
        holder.wait()
    claim_task(mdir, "libero_goal", 1).close()  # a dead holder releases it


# ------------------------------------------------------------------ 15: PARALLEL_TASKS=0
def test_parallel_tasks_zero_is_refused_not_a_hang(tiny_ckpt, tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "PARALLEL_TASKS": "0", "TASK_IDS": "0",
           "CHECKPOINT": str(tiny_ckpt), "OUT_ROOT": str(tmp_path)}
    proc = subprocess.run(["bash", "eval_with_video_subEnv.sh"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)
    one_error(proc.returncode, proc.stderr, "PARALLEL_TASKS=0")


# ------------------------------------------------------------------ 16: default run names
def test_default_run_names_tell_runs_and_settings_apart():
    from libero_eval import eval_rdt_libero as ev

    s = {"exec_horizon": 16, "num_steps_wait": 10, "max_steps": None}
    a = ev.default_run_name("ckpts/run-a/checkpoint-202", ["libero_goal"], s, [7])
    b = ev.default_run_name("ckpts/run-b/checkpoint-202", ["libero_goal"], s, [7])
    assert a != b and a.startswith("run-a_checkpoint-202")
    dpm = ev.default_run_name("ckpts/run-a/checkpoint-202", ["libero_goal"], s, [7], {"num_inference_steps": 10})
    assert dpm != a and "dpm10" in dpm
    for given in ({"resolution": 256}, {"dtype": "bfloat16"}, {"instruction_source": "benchmark"}, {"ema": True}):
        assert ev.default_run_name("ckpts/run-a/checkpoint-202", ["libero_goal"], s, [7], given) != a


# ------------------------------------------------------------------ 17: merge_lora on the wrong thing
def test_merge_lora_on_a_full_checkpoint_or_nothing(tiny_ckpt, tmp_path, capsys):
    from scripts.merge_lora import main as merge

    rc, err = cli(merge, [str(tiny_ckpt), "--out", str(tmp_path / "m")], capsys)
    one_error(rc, err, "full checkpoint", "needs no merging")
    rc, err = cli(merge, [str(tmp_path / "nope"), "--out", str(tmp_path / "m")], capsys)
    one_error(rc, err, str(tmp_path / "nope"), "not found")


# ------------------------------------------------------------------ 18: a typo in a local encoder path
def test_local_text_encoder_typo_fails_at_once(monkeypatch, capsys):
    from scripts.preprocess_language_embeddings import main as preprocess

    monkeypatch.chdir(REPO)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    t0 = time.monotonic()
    rc, err = cli(preprocess, ["--config", "configs/tiny.yaml", "--text_encoder", "checkpoints/nope_t5"], capsys)
    one_error(rc, err, "checkpoints/nope_t5", "not found")
    assert time.monotonic() - t0 < 20


# ------------------------------------------------------------------ 19: the 1B recipe on a machine without a GPU
def test_finetune_launcher_without_gpu_suggests_the_cpu_preset(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "CUDA_VISIBLE_DEVICES": "", "OUTPUT_DIR": str(tmp_path / "o")}
    t0 = time.monotonic()
    proc = subprocess.run(["bash", "finetune_sft.sh", "--max_train_steps", "1"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    one_error(proc.returncode, proc.stderr, "no GPU", "configs/tiny.yaml")
    assert time.monotonic() - t0 < 60


# ------------------------------------------------------------------ 20: checkpoint file modes
@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600)])
def test_weights_get_the_mode_of_every_other_file(tmp_path, umask, mode):
    from configs.loader import load_typed
    from models.loading import build_runner, save_pretrained

    old = os.umask(umask)
    try:
        save_pretrained(build_runner(load_typed("configs/tiny.yaml")), tmp_path / "ck")
    finally:
        os.umask(old)
    for name in ("config.json", "model.safetensors"):
        assert (tmp_path / "ck" / name).stat().st_mode & 0o777 == mode, name


# ------------------------------------------------------------------ 21: warnings in evaluation output
def test_evaluation_policy_prints_no_deprecation_or_accelerator_warning(tiny_ckpt):
    code = ("import sys; from policy.rdt_policy import RDTPolicy; "
            "p = RDTPolicy.from_pretrained(sys.argv[1], 'cpu'); p.warmup('put the bowl on the stove', 64); "
            "print('ok')")
    env = {k: v for k, v in os.environ.items() if k not in ("DS_ACCELERATOR", "PYTHONWARNINGS")}
    proc = subprocess.run([sys.executable, "-W", "default", "-c", code, str(tiny_ckpt)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]
    assert "DeprecationWarning" not in proc.stderr, proc.stderr[-3000:]
    assert "Setting accelerator to CPU" not in proc.stderr + proc.stdout


def test_scheduler_warning_is_silenced_only_inside_the_scheduler():
    from configs.loader import load_typed
    from models.loading import build_runner

    runner = build_runner(load_typed("configs/tiny.yaml"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runner.noise_scheduler_sample.set_timesteps(5)  # diffusers directly: still warns (not silenced globally)
        direct = len(caught)
        from models import rdt_runner

        with rdt_runner._quiet_scheduler():
            runner.noise_scheduler_sample.set_timesteps(5)
    assert direct >= 1 and len(caught) == direct


# ------------------------------------------------------------------ beyond the list: every entry point's one line
def test_user_errors_raised_in_a_worker_are_one_line():
    from configs.errors import one_line
    from data.libero_hdf5 import LiberoDataError

    wrapped = LiberoDataError("Caught LiberoDataError in DataLoader worker process 0.\nOriginal Traceback (most "
                              "recent call last):\n  File \"x.py\", line 1, in f\ndata.libero_hdf5.LiberoDataError: "
                              "/d/f.hdf5: file not found")
    assert one_line(wrapped) == "/d/f.hdf5: file not found"
    assert isinstance(wrapped, UserError)


# ------------------------------------------------------------------ beyond the list: a device this machine lacks
@pytest.mark.parametrize("module", ["libero_eval.eval_rdt_libero", "scripts.preprocess_language_embeddings"])
def test_a_device_this_machine_lacks_is_one_line_at_once(module, tiny_ckpt):
    """`--device cuda:99` (no such GPU here, whatever the machine) fails before anything loads, in one
    line: it was a torch AssertionError traceback after the checkpoint had loaded."""
    extra = ["--checkpoint", str(tiny_ckpt)] if module.startswith("libero_eval") else []
    proc = subprocess.run([sys.executable, "-m", module, *extra, "--device", "cuda:99"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert any(line.startswith("error: --device cuda:99: ") for line in proc.stderr.splitlines()), proc.stderr

