"""Evaluation pieces that need no rollout: input validation, CSV / summary logic, and the policy's
conditioning compared with the training dataset's for the same observation."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from configs.suites import LIBERO_SUITES
from libero_eval import env as lenv
from libero_eval import eval_rdt_libero as ev
from libero_eval.metrics import wilson_interval
from libero_eval.sim_worker import SimWorker


@pytest.fixture(scope="module")
def tiny_ckpt(tiny_encoders_dir, tmp_path_factory) -> Path:
    from scripts.bench_eval import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "checkpoint-1", tiny_encoders_dir)


@pytest.fixture(scope="module")
def policy(tiny_ckpt):
    from policy.rdt_policy import RDTPolicy

    return RDTPolicy.from_pretrained(tiny_ckpt, "cpu")


@pytest.fixture
def no_simulator(monkeypatch):
    """Fail the test if anything tries to start a simulator."""
    def boom(*a, **k):
        raise AssertionError("a simulator was started")

    monkeypatch.setattr(ev, "run_jobs", boom)
    monkeypatch.setattr(SimWorker, "__init__", boom)
    monkeypatch.setattr(lenv, "make_env", boom)


# ------------------------------------------------------------------------------------ bad inputs
def _run(argv, capsys):
    rc = ev.main(argv)
    return rc, capsys.readouterr().err


def test_missing_checkpoint(no_simulator, tmp_path, capsys):
    rc, err = _run(["--checkpoint", str(tmp_path / "nope"), "--suite", "libero_goal", "--out_root", str(tmp_path)], capsys)
    assert rc == 2 and "checkpoint not found" in err and "nope" in err


def test_run_dir_without_checkpoints(no_simulator, tmp_path, capsys):
    (tmp_path / "run").mkdir()
    rc, err = _run(["--checkpoint", str(tmp_path / "run"), "--out_root", str(tmp_path)], capsys)
    assert rc == 2 and "no complete checkpoint" in err


def test_unknown_suite_lists_valid(no_simulator, tiny_ckpt, tmp_path, capsys):
    rc, err = _run(["--checkpoint", str(tiny_ckpt), "--suite", "libero_nope", "--out_root", str(tmp_path)], capsys)
    assert rc == 2 and "libero_nope" in err
    for s in LIBERO_SUITES:
        assert s in err


def test_task_id_out_of_range(no_simulator, tiny_ckpt, tmp_path, capsys):
    rc, err = _run(["--checkpoint", str(tiny_ckpt), "--suite", "libero_goal", "--task_ids", "1", "10",
                    "--out_root", str(tmp_path)], capsys)
    assert rc == 2 and "[10]" in err and "0..9" in err


@pytest.fixture
def no_checkpoint(monkeypatch):
    """Fail the test if anything tries to resolve (load) a checkpoint."""
    from policy import checkpoints

    def boom(*a, **k):
        raise AssertionError("a checkpoint was loaded")

    monkeypatch.setattr(checkpoints, "resolve_checkpoint", boom)


@pytest.mark.parametrize("h,expected", [("0", "eval.exec_horizon is 0; expected a number >= 1"),
                                        ("-3", "eval.exec_horizon is -3; expected a number >= 1"),
                                        ("65", "eval.exec_horizon (65) must be at most common.action_chunk_size (64)")])
def test_bad_exec_horizon(no_simulator, no_checkpoint, tiny_ckpt, tmp_path, capsys, h, expected):
    """Refused by the schema (EvalConfig, Config) before the checkpoint loads: one line naming the flag."""
    rc, err = _run(["--checkpoint", str(tiny_ckpt), "--exec_horizon", h, "--out_root", str(tmp_path)], capsys)
    assert rc == 2 and f"error: --exec_horizon: {expected}" in err and len(err.strip().splitlines()) == 1


def test_exec_horizon_beyond_the_checkpoints_chunk(no_simulator, tiny_encoders_dir, tmp_path, capsys):
    """The same schema check (Config: eval.exec_horizon <= common.action_chunk_size) against the
    checkpoint's own chunk, which can be shorter than base.yaml's."""
    from scripts.bench_eval import make_tiny_checkpoint

    ck = make_tiny_checkpoint(tmp_path / "short" / "checkpoint-1", tiny_encoders_dir,
                              overrides=["common.action_chunk_size=16"])
    rc, err = _run(["--checkpoint", str(ck), "--exec_horizon", "32", "--resolve_only", "--out_root", str(tmp_path)],
                   capsys)
    assert rc == 2 and "--exec_horizon: eval.exec_horizon (32) must be at most common.action_chunk_size (16)" in err


@pytest.mark.parametrize("argv,expected", [
    (["--seeds", "0", "-2"], "--seeds must be >= 0"),
    (["--seed", "-1"], "--seed: eval.seed is -1; expected a number >= 0"),
    (["--torch_threads", "0"], "--torch_threads must be >= 1, got 0"),
    (["--num_envs", "0"], "--num_envs: eval.num_envs is 0; expected a number >= 1"),
    (["--step_timeout", "nan"], "--step_timeout: eval.step_timeout is nan"),
    (["--suites", "libero_goal", "libero_nope"], "--suites: unknown LIBERO suite 'libero_nope'"),
])
def test_bad_flags_are_refused_before_the_checkpoint_loads(no_simulator, no_checkpoint, tmp_path, capsys, argv,
                                                          expected):
    rc, err = _run(["--checkpoint", str(tmp_path / "ck"), *argv, "--out_root", str(tmp_path)], capsys)
    assert rc == 2 and expected in err and len(err.strip().splitlines()) == 1


def test_request_is_parsed_once_frozen_and_leaves_the_namespace_alone():
    import dataclasses

    from libero_eval.settings import EvalRequest

    ns = ev.build_parser().parse_args(["--suites", "libero_10", "--robustness", "--exec_horizon", "8",
                                       "--task_ids", "1", "2", "--no_progress"])
    request = EvalRequest.from_args(ns)
    assert request.suites == ("libero_10", "libero_10_lan", "libero_10_object", "libero_10_swap",
                              "libero_10_task", "libero_10_with_mug")
    assert ns.suites == ["libero_10"]  # the namespace is read, never written
    assert request.task_ids == (1, 2) and request.seeds == () and request.progress is False
    assert dict(request.eval_overrides) == {"exec_horizon": 8}  # only the eval flags given
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.suites = ("libero_goal",)
    with pytest.raises(TypeError):
        request.eval_overrides["num_envs"] = 4
    assert EvalRequest.from_args(ns) == request  # the same command line, the same request


def test_no_render_backend(no_simulator, tiny_ckpt, tmp_path, capsys, monkeypatch):
    def no_gl():
        raise lenv.RenderBackendError("MuJoCo cannot create an offscreen OpenGL context with MUJOCO_GL='egl'")

    monkeypatch.setattr(lenv, "check_render_backend", no_gl)
    rc, err = _run(["--checkpoint", str(tiny_ckpt), "--task_ids", "0", "--out_root", str(tmp_path)], capsys)
    assert rc == 2 and "OpenGL" in err


def test_replay_missing_demo_file(no_simulator, tmp_path, capsys):
    rc, err = _run(["--policy", "replay", "--demo_file", str(tmp_path / "x.hdf5")], capsys)
    assert rc == 2 and "file not found" in err


def test_resume_refuses_other_checkpoint(no_simulator, tiny_ckpt, tmp_path, capsys):
    mdir = ev.metrics_dir(tmp_path, "r")
    ev.append_row(mdir / "trials.csv", {"suite": "libero_goal", "task_id": 0, "trial": 0, "success": 1,
                                        "checkpoint": "/elsewhere/checkpoint-9"})
    rc, err = _run(["--checkpoint", str(tiny_ckpt), "--task_ids", "0", "--run_name", "r", "--out_root", str(tmp_path)],
                   capsys)
    assert rc == 2 and "another checkpoint" in err


# ------------------------------------------------------------------------------ CSV and summary
def _row(task, trial, success, error="", infer=10.0, steps=5):
    return {"suite": "libero_goal", "task_id": task, "task_name": f"t{task}", "trial": trial, "init_state_idx": trial,
            "seed": 7 + trial, "success": int(success), "steps": steps, "wall_time_s": 1.0, "mean_infer_ms": infer,
            "exec_horizon": 8, "checkpoint": "c", "video": "", "error": error}


def test_append_row_recovers_from_torn_line(tmp_path):
    p = tmp_path / "trials.csv"
    ev.append_row(p, _row(0, 0, True))
    with open(p, "a") as f:
        f.write("libero_goal,0,t0,1,1")  # a kill in the middle of a row
    ev.append_row(p, _row(0, 2, False))
    rows = ev.read_rows(p)
    assert [(r["trial"], r["success"]) for r in rows] == [("0", "1"), ("2", "0")]


def test_summary_rates_errors_and_mean(tmp_path):
    p = tmp_path / "trials.csv"
    rows = [_row(0, 0, True), _row(0, 1, False), _row(0, 2, False, error="SimulatorDied: died"),
            _row(1, 0, True), _row(1, 1, True, infer=30.0)]
    for r in rows:
        ev.append_row(p, r)
    ev.append_row(p, _row(0, 2, True))  # the retried error trial supersedes the error row
    summary = ev.write_summary(tmp_path)
    with open(tmp_path / "summary.csv", newline="") as f:
        assert list(csv.DictReader(f)) == [{k: str(v) for k, v in r.items()} for r in summary]
    t0, t1, mean = summary
    assert (t0["n"], t0["successes"], t0["success_rate"], t0["errors"]) == (3, 2, "0.6667", 0)
    assert (t1["n"], t1["success_rate"], t1["mean_infer_ms"]) == (2, "1.0000", "20.00")
    assert mean["task_id"] == "mean" and mean["success_rate"] == f"{(2 / 3 + 1) / 2:.4f}" and mean["n"] == 5

    p2 = tmp_path / "e" / "trials.csv"
    for r in rows:
        ev.append_row(p2, r)
    t0 = ev.write_summary(p2.parent)[0]
    # A trial that raised counts as a failure (OpenVLA-OFT / openpi), and is counted in errors.
    assert (t0["n"], t0["successes"], t0["success_rate"], t0["errors"]) == (3, 1, "0.3333", 1)


def test_run_settings_are_recorded_and_a_rerun_with_others_is_refused(tmp_path):
    settings = {"checkpoint": "/c", "weights_sha256": "ab12", "exec_horizon": 16, "max_steps": None,
                "num_steps_wait": 10, "resolution": 128, "dtype": "float32", "num_inference_steps": 5,
                "instruction_source": "problem_info"}
    mdir = tmp_path / "run"
    ev.check_run_settings(mdir, settings)
    ev.check_run_settings(mdir, dict(settings))  # same settings: resume
    for key, value in (("exec_horizon", 8), ("weights_sha256", "cd34"), ("max_steps", 40), ("dtype", "bfloat16"),
                       ("num_steps_wait", 0), ("num_inference_steps", 10), ("resolution", 256)):
        with pytest.raises(ValueError, match=rf"other settings \({key}: .* -> {value!r}\)"):
            ev.check_run_settings(mdir, {**settings, key: value})


def test_default_run_name_carries_the_settings():
    s = {"exec_horizon": 8, "num_steps_wait": 10, "max_steps": None}
    # a checkpoint-N folder carries its training run's name: step 20 of two runs do not collide
    assert ev.default_run_name("ck/checkpoint-20/", ["libero_goal"], s, [3]) == "ck_checkpoint-20_libero_goal_h8_s3"
    assert ev.default_run_name("ck", ["libero_goal"], {**s, "max_steps": 40}, [3]) == "ck_libero_goal_h8_s3_max40"
    assert (ev.default_run_name("ck", ["libero_goal", "libero_10"], s, [0, 1, 2])
            == "ck_libero_goal+libero_10_h8_s0-1-2")


def test_wilson_interval_matches_the_textbook_values():
    lo, hi = wilson_interval(8, 10)
    assert (round(lo, 3), round(hi, 3)) == (0.490, 0.943)
    lo, hi = wilson_interval(0, 20)
    assert lo == 0.0 and round(hi, 3) == 0.161


def test_summary_over_seeds_and_suites(tmp_path):
    """Per task: pooled rate with its Wilson interval, mean and std over seeds; per suite the same over
    the task rates; with several suites one mean over them."""
    p = tmp_path / "trials.csv"
    outcomes = {("libero_goal", 0): {0: [1, 1], 1: [1, 0]}, ("libero_goal", 1): {0: [0, 0], 1: [1, 0]},
                ("libero_10", 0): {0: [1, 1], 1: [1, 1]}}
    for (suite, task), by_seed in outcomes.items():
        for seed, results in by_seed.items():
            for trial, ok in enumerate(results):
                ev.append_row(p, {**_row(task, trial, ok), "suite": suite, "eval_seed": seed, "seed": seed + trial})
    summary = {(r["suite"], r["task_id"]): r for r in ev.write_summary(tmp_path)}
    g0 = summary[("libero_goal", 0)]
    assert (g0["n"], g0["successes"], g0["success_rate"], g0["seeds"]) == (4, 3, "0.7500", 2)
    assert (g0["seed_mean"], g0["seed_std"]) == ("0.7500", f"{np.std([1.0, 0.5], ddof=1):.4f}")
    assert (g0["ci95_low"], g0["ci95_high"]) == tuple(f"{x:.4f}" for x in wilson_interval(3, 4))
    goal = summary[("libero_goal", "mean")]  # task rates 0.75 and 0.25; seed 0: (1 + 0) / 2, seed 1: (.5 + .5) / 2
    assert (goal["success_rate"], goal["seed_mean"], goal["seed_std"]) == ("0.5000", "0.5000", "0.0000")
    assert (goal["n"], goal["successes"]) == (8, 4)
    both = summary[("all", "mean")]
    assert both["success_rate"] == "0.7500" and "libero_goal" in both["task_name"] and both["n"] == 12


def test_rows_under_an_old_header_are_read_but_not_appended_to(tmp_path):
    p = tmp_path / "trials.csv"
    old_fields = ("suite", "task_id", "task_name", "trial", "init_state_idx", "seed", "success", "steps",
                  "wall_time_s", "mean_infer_ms", "exec_horizon", "checkpoint", "video", "error")
    ev.append_row(p, _row(0, 0, True), fields=old_fields)
    assert len(ev.read_rows(p)) == 1
    with pytest.raises(ValueError, match="other columns"):
        ev.check_columns(p)


def test_summarize_only(tmp_path, capsys):
    for r in [_row(3, 0, True), _row(3, 1, False)]:
        ev.append_row(ev.metrics_dir(tmp_path, "s") / "trials.csv", r)
    assert ev.main(["--summarize_only", "--run_name", "s", "--out_root", str(tmp_path)]) == 0
    assert (ev.metrics_dir(tmp_path, "s") / "summary.csv").is_file()
    assert "0.5000" in capsys.readouterr().out


# ------------------------------------------------------------------------------ checkpoint forms
def test_run_dir_picks_newest_complete_checkpoint(tiny_ckpt, tmp_path):
    import shutil

    from policy.checkpoints import resolve_checkpoint

    run = tmp_path / "run"
    for step in (2, 10):
        shutil.copytree(tiny_ckpt, run / f"checkpoint-{step}")
    shutil.copytree(tiny_ckpt, run / "checkpoint-20")
    (run / "checkpoint-20" / "trainer_state.json").unlink()  # incomplete: must be ignored
    assert resolve_checkpoint(run).weights == run / "checkpoint-10"


def test_bare_weights_file_needs_config(tiny_ckpt, tmp_path):
    from policy.checkpoints import PolicyError, resolve_checkpoint

    f = tmp_path / "mp_rank_00_model_states.pt"
    f.write_bytes(b"")
    with pytest.raises(PolicyError, match="--config"):
        resolve_checkpoint(f)
    assert resolve_checkpoint(f, config="configs/tiny.yaml").weights == f


# ------------------------------------------------------------------------------ policy
def _obs_from_file(f, demo: str, o: int) -> dict:
    """A live-style observation rebuilt from a raw file's recorded obs/*[o] (images as rendered)."""
    from robosuite.utils.transform_utils import axisangle2quat

    g = f[f"data/{demo}/obs"]
    return {
        "agentview_image": g["agentview_rgb"][o], "robot0_eye_in_hand_image": g["eye_in_hand_rgb"][o],
        "robot0_eef_pos": g["ee_pos"][o], "robot0_eef_quat": axisangle2quat(g["ee_ori"][o]),
        "robot0_gripper_qpos": g["gripper_states"][o], "robot0_joint_pos": g["joint_states"][o],
    }


def test_policy_conditioning_equals_dataset(policy, libero_fixture_file, tmp_path):
    """Same observation -> same state vector, image slots (flip), slot masks, masks, language."""
    import h5py

    from data.dataset import LiberoDataset
    from policy.batch import collate

    ds = LiberoDataset(policy.cfg, {"libero_goal": {"path": str(libero_fixture_file.parent), "layout": "raw"}},
                       cache_dir=tmp_path)
    instruction = lenv.task_instruction("libero_goal", 1, policy.instruction_source)
    with h5py.File(libero_fixture_file) as f:
        for i in (0, 7):  # 0: first sample of a demo (t-1 frame masked); 7: mid-demo
            path, demo, k = ds.locate(i)
            o = k - 1  # raw layout: the observation preceding actions[k]
            sample = ds[i]
            ref = collate([sample])
            policy.reset(1)
            policy.start_episode(0)
            if o > 0:
                policy.observe(0, _obs_from_file(f, demo, o - 1))
            got = policy.build_batch([_obs_from_file(f, demo, o)], instruction)
            assert sample["instruction"] == instruction
            assert torch.equal(got["images"], ref["images"])  # flipped the same way, same slots
            assert torch.equal(got["image_mask"], ref["image_mask"])
            assert got["image_mask"][0].tolist() == [o > 0, o > 0, False, True, True, False]
            torch.testing.assert_close(got["state"], ref["state"], atol=1e-6, rtol=0)
            for key in ("state_elem_mask", "action_elem_mask", "ctrl_freqs"):
                assert torch.equal(got[key], ref[key]), key
            # and through the conditioner: identical image tokens and state tokens
            a = policy.conditioner(got, train=False)
            b = policy.conditioner({**ref, "lang_embeds": got["lang_embeds"], "lang_mask": got["lang_mask"]},
                                   train=False)
            torch.testing.assert_close(a["img_tokens"], b["img_tokens"])
            torch.testing.assert_close(a["state_tokens"], b["state_tokens"], atol=1e-6, rtol=0)


def _fake_obs(rng, res=32):
    return {
        "agentview_image": rng.integers(0, 255, (res, res, 3), dtype=np.uint8),
        "robot0_eye_in_hand_image": rng.integers(0, 255, (res, res, 3), dtype=np.uint8),
        "robot0_eef_pos": np.array([-0.1, 0.0, 1.0]) + rng.normal(0, 0.01, 3),
        "robot0_eef_quat": np.array([1.0, 0.0, 0.0, 0.0]), "robot0_gripper_qpos": np.array([0.03, -0.03]),
        "robot0_joint_pos": np.zeros(7),
    }


def test_predict_action_batched_equals_single_and_language_once(policy):
    rng = np.random.default_rng(0)
    obs = [_fake_obs(rng), _fake_obs(rng)]
    calls = []
    text = policy.text
    orig = text.encode
    policy._lang_cache.clear()
    text.encode = lambda texts: (calls.append(list(texts)), orig(texts))[1]
    try:
        policy.reset(2)
        for s in (0, 1):
            policy.start_episode(s, seed=100 + s)
        both = policy.predict_action(obs, "put the bowl on the stove", slots=[0, 1])
        policy.reset(2)
        policy.start_episode(1, seed=101)
        single = policy.predict_action([obs[1]], "put the bowl on the stove", slots=[1])
    finally:
        text.encode = orig
    assert both.shape == (2, 64, 128) and np.all(np.isfinite(both))
    assert len(calls) == 1  # the instruction was embedded once
    np.testing.assert_allclose(both[1], single[0], atol=1e-4)
    unused = policy._action_mask == 0
    assert np.all(both[..., unused] == 0) and np.abs(both[..., ~unused]).max() > 0
    assert policy.last_infer_ms > 0
    a = policy.decode(both[0, 0], obs[0])
    assert a.shape == (7,) and np.all(np.abs(a[:6]) <= 1) and a[6] in (-1.0, 1.0)


def test_training_resolution_comes_from_the_checkpoint(tiny_ckpt, tmp_path):
    import json
    import shutil

    from policy.checkpoints import resolve_checkpoint

    ck = tmp_path / "ck"
    shutil.copytree(tiny_ckpt, ck)
    assert resolve_checkpoint(ck).training_resolution() is None  # unknown -> the caller's default
    info = json.loads((ck / "train_config.json").read_text())
    info["data"] = {"suites": ["libero_goal_no_noops"], "image_hw": [[256, 256]]}
    (ck / "train_config.json").write_text(json.dumps(info))
    assert resolve_checkpoint(ck).training_resolution() == 256
    info["data"]["image_hw"] = [[128, 128], [256, 256]]  # mixed: no single answer
    (ck / "train_config.json").write_text(json.dumps(info))
    assert resolve_checkpoint(ck).training_resolution() is None


def test_prompt_is_the_instruction_training_used():
    suite = lenv.get_suite("libero_goal")
    task = lenv.get_task(suite, 1)
    trained = {"instructions": {task.name: "bowl -> stove, as a per-suite source wrote it"}}
    assert ev.task_prompt(trained, suite, 1, task.name, "problem_info") == trained["instructions"][task.name]
    # no stored text (older checkpoints, other tasks): the configured source; an explicit flag wins
    expected = lenv.task_instruction(suite, 1, "problem_info")
    assert ev.task_prompt({}, suite, 1, task.name, "problem_info") == expected
    assert ev.task_prompt(trained, suite, 1, task.name, "problem_info", explicit="problem_info") == expected
    assert lenv.task_instruction(suite, 1, "file") == expected  # the documented alias is accepted


def test_eval_settings_come_from_the_checkpoint_config(no_simulator, tiny_ckpt, tmp_path, capsys):
    """The protocol is the typed eval section of the checkpoint's config: --set eval.* reaches it and a
    bad value is one line naming the key; a flag overrides it."""
    rc, err = _run(["--checkpoint", str(tiny_ckpt), "--set", "eval.video=some", "--out_root", str(tmp_path)], capsys)
    assert rc == 2 and "eval.video is 'some'; expected one of ['all', 'failures', 'none']" in err
    rc = ev.main(["--checkpoint", str(tiny_ckpt), "--task_ids", "0", "--set", "eval.exec_horizon=4", "eval.seed=3",
                  "--resolve_only", "--out_root", str(tmp_path)])
    assert rc == 0 and capsys.readouterr().out.strip().endswith("_libero_goal_h4_s3")
    rc = ev.main(["--checkpoint", str(tiny_ckpt), "--task_ids", "0", "--set", "eval.exec_horizon=4",
                  "--exec_horizon", "8", "--resolve_only", "--out_root", str(tmp_path)])
    assert rc == 0 and capsys.readouterr().out.strip().endswith("_libero_goal_h8_s7")


def test_report_from_the_csv_alone(tmp_path, capsys):
    """report.md + report.png from trials.csv only, a torn last row (a crashed run) included."""
    from libero_eval import report

    mdir = ev.metrics_dir(tmp_path, "rep")
    video = tmp_path / "v" / "libero_goal_task0_s0_trial1_failure.mp4"
    for seed in (0, 1):
        for trial, ok in enumerate([1, 0]):
            ev.append_row(mdir / "trials.csv", {**_row(0, trial, ok, steps=40 + trial), "eval_seed": seed,
                                                 "seed": seed + trial, "max_steps": 300,
                                                 "video": str(video) if not ok else ""})
    ev.append_row(mdir / "trials.csv", {**_row(1, 0, True), "suite": "libero_10", "eval_seed": 0, "max_steps": 520})
    with open(mdir / "trials.csv", "a") as f:
        f.write("libero_goal,0,t0,5,5")  # killed mid-row
    assert report.main([str(mdir)]) == 0
    md = (mdir / "report.md").read_text()
    assert "| libero_goal | 0 | t0 | 4 | 2 | 0.5000 | [0.1500, 0.8500] | 2 | 0.5000 | 0.0000 | 0 |" in md
    assert "| all | mean |" in md and "## Failures (2)" in md and video.as_uri() in md
    png = (mdir / "report.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    with pytest.raises(report.ReportError, match="no trials.csv"):
        report.main([str(tmp_path / "nothing")])


def test_libero_pro_suites_are_selectable_and_unshipped_ones_refused():
    from configs.suites import EVAL_SUITES, LIBERO_PRO_SUITES, base_suite, check_suite, perturbations_of

    assert check_suite("libero_goal_lan", "--suites", EVAL_SUITES) == "libero_goal_lan"
    assert base_suite("libero_10_swap") == "libero_10" and base_suite("libero_goal") == "libero_goal"
    assert perturbations_of("libero_goal") == ["libero_goal_lan", "libero_goal_object", "libero_goal_swap",
                                               "libero_goal_task", "libero_goal_with_mug",
                                               "libero_goal_with_yellow_book", "libero_goal_with_milk"]
    assert len(LIBERO_PRO_SUITES) == 25
    with pytest.raises(ValueError, match="unknown LIBERO suite 'libero_goal_env'.*LIBERO-PRO: libero_spatial_lan"):
        check_suite("libero_goal_env", "--suites", EVAL_SUITES)
    with pytest.raises(ValueError, match="unknown LIBERO suite 'libero_goal_lan'; valid suites: libero_spatial"):
        check_suite("libero_goal_lan", "dataset")  # training data: standard suites only
    assert lenv.max_steps("libero_goal_swap") == lenv.max_steps("libero_goal") == 300
    request = ev.EvalRequest.from_args(ev.build_parser().parse_args(["--suites", "libero_10", "--robustness"]))
    assert request.suites == ("libero_10", "libero_10_lan", "libero_10_object", "libero_10_swap", "libero_10_task",
                              "libero_10_with_mug")


def test_robustness_table_puts_each_perturbation_next_to_the_standard_suite():
    from libero_eval.metrics import robustness_table

    def mean(suite, rate):
        return {"suite": suite, "task_id": "mean", "success_rate": rate, "ci95_low": "0.1", "ci95_high": "0.9"}
    table = robustness_table([mean("libero_goal", "0.8000"), mean("libero_goal_lan", "0.5000"),
                              mean("libero_goal_swap", "0.2000"), mean("all", "0.5")])
    assert table == [{"suite": "libero_goal", "standard": "0.8000 [0.1, 0.9]", "lan": "0.5000 [0.1, 0.9]",
                      "swap": "0.2000 [0.1, 0.9]"}]


def test_report_logs_to_wandb_offline(tmp_path, monkeypatch):
    from libero_eval import report

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    mdir = ev.metrics_dir(tmp_path, "wb")
    for trial, ok in enumerate([1, 0, 1]):
        ev.append_row(mdir / "trials.csv", {**_row(0, trial, ok), "eval_seed": 0, "max_steps": 300})
    assert report.main([str(mdir), "--wandb", "rdt-test"]) == 0
    runs = list((mdir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("*.wandb"))
    (table,) = (runs[0] / "files" / "media" / "table").glob("summary_*.table.json")
    data = json.loads(table.read_text())
    rate = data["columns"].index("success_rate")
    assert [r[rate] for r in data["data"]] == ["0.6667", "0.6667"]  # the task and its suite mean
    assert list((runs[0] / "files" / "media" / "images").glob("report_*.png"))


@pytest.mark.parametrize("argv, compiled", [([], False), (["--compile"], True),
                                            (["--set", "eval.compile=true"], True)])
def test_compile_reaches_the_runner(tiny_ckpt, argv, compiled):
    """``--compile`` / ``eval.compile`` makes the evaluated policy sample through the runner's
    compiled network (``compile_for_inference``: what gpu_check and bench_official measure); off by
    default. Nothing is compiled here (that happens at the first chunk)."""
    from libero_eval.settings import EvalRequest

    request = EvalRequest.from_args(ev.build_parser().parse_args(["--checkpoint", str(tiny_ckpt), *argv]))
    ck = ev.open_checkpoint(request)
    ecfg = request.applied_to(ck.config).eval
    settings = ev.run_settings(request, ck, ecfg, "cpu")
    assert settings["compile"] is compiled
    policy = ev.load_policy(request, ck, settings, "cpu")
    assert (policy.runner._compiled_model is not None) is compiled
