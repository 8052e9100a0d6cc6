"""Evaluation rollouts in the LIBERO simulator (short budgets): CSV / summary / video outputs,
kill-and-resume, and replaying simulator-made demos through the encode -> decode execution path."""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from libero_eval import eval_rdt_libero as ev
from libero_eval.metrics import TRIAL_FIELDS
from policy.checkpoints import weights_sha256

pytestmark = [pytest.mark.sim, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
SUITE, TASK = "libero_goal", 1
# Replay of a simulator-made demo from its recorded start state must follow the recorded eef path
# (robosuite is deterministic; only contact warm-start differs): measured < 0.1 mm, bound 2 mm.
REPLAY_TOL_MM = 2.0


@pytest.fixture(scope="module")
def tiny_ckpt(tiny_encoders_dir, tmp_path_factory) -> Path:
    from scripts.bench_eval import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "checkpoint-1", tiny_encoders_dir)


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_rollout_two_trials_outputs(tiny_ckpt, tmp_path):
    max_steps = 20
    rc = ev.main(["--checkpoint", str(tiny_ckpt), "--suite", SUITE, "--task_ids", str(TASK), "--num_trials", "2",
                  "--exec_horizon", "8", "--num_envs", "2", "--max_steps", str(max_steps), "--video", "all",
                  "--run_name", "t", "--out_root", str(tmp_path), "--no_progress"])
    assert rc == 0
    rows = _rows(tmp_path / "metrics" / "t" / "trials.csv")
    assert [r["trial"] for r in sorted(rows, key=lambda r: r["trial"])] == ["0", "1"]
    assert tuple(rows[0]) == TRIAL_FIELDS
    for r in rows:
        i = int(r["trial"])
        assert r["suite"] == SUITE and r["task_id"] == str(TASK) and r["task_name"] == "put_the_bowl_on_the_stove"
        assert r["init_state_idx"] == str(i) and r["seed"] == str(7 + i) and r["exec_horizon"] == "8"
        assert r["error"] == "" and r["success"] == "0"  # a random tiny model does not solve the task
        assert r["steps"] == str(max_steps)
        assert float(r["mean_infer_ms"]) > 0 and float(r["wall_time_s"]) > 0
        assert Path(r["checkpoint"]) == tiny_ckpt.resolve() and r["eval_seed"] == "7"
        assert r["weights_sha256"] == weights_sha256(tiny_ckpt) and len(r["weights_sha256"]) == 64
        video = Path(r["video"])
        assert video.name == f"{SUITE}_task{TASK}_s7_trial{i}_failure.mp4" and video.parent == tmp_path / "eval_videos" / "t"
        import imageio

        reader = imageio.get_reader(str(video))
        frames = [f for f in reader]
        reader.close()
        assert len(frames) == max_steps + 1  # the start frame after settling + one per policy step
        assert frames[0].shape == (128, 256, 3)  # agentview | eye-in-hand
    assert not list((tmp_path / "eval_videos" / "t").glob("*.partial.mp4"))
    summary = _rows(tmp_path / "metrics" / "t" / "summary.csv")
    assert [(s["task_id"], s["n"], s["successes"], s["success_rate"], s["errors"]) for s in summary] == [
        (str(TASK), "2", "0", "0.0000", "0"), ("mean", "2", "0", "0.0000", "0")]


def test_kill_mid_run_then_resume(tiny_ckpt, tmp_path):
    import psutil

    args = ["--checkpoint", str(tiny_ckpt), "--suite", SUITE, "--task_ids", str(TASK), "--num_trials", "3",
            "--exec_horizon", "8", "--num_envs", "1", "--max_steps", "16", "--video", "none", "--run_name", "k",
            "--out_root", str(tmp_path), "--no_progress"]
    trials_csv = tmp_path / "metrics" / "k" / "trials.csv"
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    proc = subprocess.Popen([sys.executable, "-m", "libero_eval.eval_rdt_libero", *args], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            if trials_csv.is_file() and len(ev.read_rows(trials_csv)) >= 1:
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the run ended before it could be killed"
        children = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    before = ev.read_rows(trials_csv)
    assert 1 <= len(before) < 3
    # the orphaned simulator processes notice the closed pipe and exit by themselves (after the command
    # they are in: an env creation can take a minute on a loaded 2-core machine)
    _, alive = psutil.wait_procs(children, timeout=180)
    assert not alive

    assert ev.main(args) == 0
    after = ev.read_rows(trials_csv)
    assert sorted(int(r["trial"]) for r in after) == [0, 1, 2]  # each trial exactly once
    assert after[: len(before)] == before  # finished trials were not repeated
    summary = _rows(tmp_path / "metrics" / "k" / "summary.csv")
    assert summary[0]["n"] == "3"


def _replay(demo_file: Path, out: Path, num_envs: int, slots: str = "independent") -> list[dict]:
    rc = ev.main(["--policy", "replay", "--demo_file", str(demo_file), "--exec_horizon", "8", "--num_envs",
                  str(num_envs), "--slots", slots, "--video", "none", "--run_name", "r", "--out_root", str(out),
                  "--no_progress"])
    rows = _rows(out / "metrics" / "r" / "replay.csv")
    assert rc == 0, rows
    return rows


@pytest.mark.parametrize("layout", ["raw", "no_noops"])
def test_replay_sim_demos_follow_recorded_path(layout, request, tmp_path):
    import h5py

    root = request.getfixturevalue("sim_demo_dir" if layout == "raw" else "sim_demo_no_noops_dir")
    demo_file = next(iter(sorted(root.glob(f"{SUITE}/*_demo.hdf5"))))
    rows = _replay(demo_file, tmp_path, num_envs=2)
    with h5py.File(demo_file) as f:
        n_demos = len(f["data"])
        lengths = {k: len(f[f"data/{k}/actions"]) for k in f["data"]}
        recorded = {k: int(bool(f[f"data/{k}"].attrs["success"])) for k in f["data"]}
    assert len(rows) == n_demos
    for r in rows:
        assert r["error"] == ""
        assert int(r["steps"]) == lengths[r["demo"]]
        assert float(r["max_eef_dev_mm"]) < REPLAY_TOL_MM, r
        assert int(r["env_success"]) == recorded[r["demo"]] == int(r["demo_success"])
        assert r["success_match"] == "1"
    assert np.isfinite([float(r["mean_eef_dev_mm"]) for r in rows]).all()


def test_simulator_crash_is_recorded_and_counted_as_a_failure(tiny_ckpt, tmp_path, monkeypatch):
    """A simulator process killed in trial 0 costs that trial only: its row says so in `error`, the
    summary counts it as a failure (and in `errors`), and trial 1 runs on a fresh simulator."""
    monkeypatch.setenv("RDT_FAULT", "sim_kill@0")
    rc = ev.main(["--checkpoint", str(tiny_ckpt), "--suite", SUITE, "--task_ids", str(TASK), "--num_trials", "2",
                  "--exec_horizon", "8", "--num_envs", "1", "--max_steps", "8", "--video", "failures",
                  "--run_name", "c", "--out_root", str(tmp_path), "--no_progress"])
    assert rc == 0
    rows = {r["trial"]: r for r in _rows(tmp_path / "metrics" / "c" / "trials.csv")}
    assert "simulator died" in rows["0"]["error"] and rows["0"]["success"] == "0" and rows["0"]["video"] == ""
    assert rows["1"]["error"] == "" and rows["1"]["steps"] == "8"
    task = _rows(tmp_path / "metrics" / "c" / "summary.csv")[0]
    assert (task["n"], task["successes"], task["errors"]) == ("2", "0", "1")
    # --retry_errors reruns only the failed trial; its new row replaces the error row
    monkeypatch.delenv("RDT_FAULT")
    assert ev.main(["--checkpoint", str(tiny_ckpt), "--suite", SUITE, "--task_ids", str(TASK), "--num_trials", "2",
                    "--exec_horizon", "8", "--max_steps", "8", "--video", "none", "--run_name", "c",
                    "--out_root", str(tmp_path), "--no_progress", "--retry_errors"]) == 0
    task = _rows(tmp_path / "metrics" / "c" / "summary.csv")[0]
    assert (task["n"], task["errors"]) == ("2", "0")


def test_suite_launcher_resolves_the_run_folder_once(tiny_ckpt, tmp_path):
    """eval_with_video_subEnv.sh on a run folder: every task process gets the same concrete checkpoint
    (training may write newer ones meanwhile), the run name carries the settings, and the rows record
    them; a rerun with another exec horizon is a new run, not a resume."""
    run_folder = tiny_ckpt.parent
    env = {**os.environ, "CHECKPOINT": str(run_folder), "DATASET_NAME": SUITE, "TASK_IDS": "1 2", "NUM_TRAJ": "1",
           "EXEC_HORIZON": "8", "VIDEO": "none", "OUT_ROOT": str(tmp_path)}
    proc = subprocess.run(["bash", str(REPO_ROOT / "eval_with_video_subEnv.sh"), "--max_steps", "4"], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run = f"{run_folder.name}_{SUITE}_h8_s7_max4"
    rows = _rows(tmp_path / "metrics" / run / "trials.csv")
    assert sorted(r["task_id"] for r in rows) == ["1", "2"]
    for r in rows:
        assert Path(r["checkpoint"]) == tiny_ckpt.resolve() and r["eval_seed"] == "7"
        assert r["weights_sha256"] == weights_sha256(tiny_ckpt) and len(r["weights_sha256"]) == 64
        assert (r["exec_horizon"], r["max_steps"], r["num_steps_wait"], r["dtype"]) == ("8", "4", "10", "float32")
        assert r["instruction"] and r["num_inference_steps"] == "5"
    assert (tmp_path / "metrics" / run / "summary.csv").is_file()
    env["EXEC_HORIZON"], env["TASK_IDS"] = "4", "1"
    proc = subprocess.run(["bash", str(REPO_ROOT / "eval_with_video_subEnv.sh"), "--max_steps", "4"], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert len(_rows(tmp_path / "metrics" / f"{run_folder.name}_{SUITE}_h4_s7_max4" / "trials.csv")) == 1
    assert len(_rows(tmp_path / "metrics" / run / "trials.csv")) == 2


def test_rows_and_run_header_record_the_simulator_stack(tiny_ckpt, tmp_path):
    from libero_eval.versions import format_versions, sim_versions

    rc = ev.main(["--checkpoint", str(tiny_ckpt), "--suite", SUITE, "--task_ids", str(TASK), "--num_trials", "1",
                  "--exec_horizon", "8", "--max_steps", "2", "--video", "none", "--run_name", "v",
                  "--out_root", str(tmp_path), "--no_progress"])
    assert rc == 0
    row = _rows(tmp_path / "metrics" / "v" / "trials.csv")[0]
    assert row["sim_stack"] == format_versions() and f"mujoco {sim_versions()['mujoco']}" in row["sim_stack"]
    import json
    header = json.loads((tmp_path / "metrics" / "v" / "run.json").read_text())
    assert header["versions"] == sim_versions() and header["settings"]["max_steps"] == 2
    assert header["stack"] == {"verified": True, "warning": "", "premise_failures": {}}  # the locked stack


def test_independent_slots_execute_exactly_what_lockstep_executes(sim_demo_dir, tmp_path):
    """Demos of different lengths on 2 simulators: with independent slots the slots run out of step
    (one resets while the other executes), yet every demo is executed step for step as in lockstep."""
    demo_file = next(iter(sorted(sim_demo_dir.glob(f"{SUITE}/*_demo.hdf5"))))
    keys = ("demo", "steps", "max_eef_dev_mm", "mean_eef_dev_mm", "env_success", "error")
    lock = [{k: r[k] for k in keys} for r in _replay(demo_file, tmp_path / "lock", 2, "lockstep")]
    free = [{k: r[k] for k in keys} for r in _replay(demo_file, tmp_path / "free", 2, "independent")]
    assert len(lock) >= 2 and lock == free



def test_sweep_jobs_through_submitit_local_executor_merge_into_one_run(tiny_ckpt, tmp_path):
    """One job per (suite, task, seed) through submitit's local executor, each in its own run folder,
    merged into one trials.csv / summary / report."""
    from libero_eval import sweep

    rc = sweep.main(["--checkpoint", str(tiny_ckpt), "--suites", SUITE, "--task_ids", str(TASK), "--seeds", "0", "1",
                     "--run_name", "sw", "--out_root", str(tmp_path), "--executor", "local", "--timeout_min", "20",
                     "--", "--num_trials", "1", "--max_steps", "4", "--exec_horizon", "4", "--video", "none"])
    assert rc == 0
    mdir = tmp_path / "metrics" / "sw"
    assert sorted(p.name for p in (mdir / "jobs").iterdir()) == [f"{SUITE}_task{TASK}_s0", f"{SUITE}_task{TASK}_s1"]
    rows = _rows(mdir / "trials.csv")
    assert sorted((r["eval_seed"], r["seed"], r["steps"]) for r in rows) == [("0", "0", "4"), ("1", "1", "4")]
    summary = _rows(mdir / "summary.csv")
    assert summary[0]["n"] == "2" and summary[0]["seeds"] == "2"
    assert (mdir / "report.md").is_file() and (mdir / "report.png").stat().st_size > 10_000


def test_libero_pro_suites_run_end_to_end_with_a_robustness_table(tiny_ckpt, tmp_path, capsys):
    """The standard suite and two LIBERO-PRO perturbations of it in one run: each runs in the simulator,
    the paraphrased suite is prompted with its own text, and the report holds the robustness table."""
    rc = ev.main(["--checkpoint", str(tiny_ckpt), "--suites", SUITE, f"{SUITE}_lan", f"{SUITE}_swap",
                  "--task_ids", str(TASK), "--num_trials", "1", "--max_steps", "4", "--exec_horizon", "4",
                  "--video", "none", "--run_name", "pro", "--out_root", str(tmp_path), "--no_progress"])
    assert rc == 0
    out = capsys.readouterr().out
    rows = {r["suite"]: r for r in _rows(tmp_path / "metrics" / "pro" / "trials.csv")}
    assert sorted(rows) == [SUITE, f"{SUITE}_lan", f"{SUITE}_swap"]
    assert all(r["error"] == "" and r["steps"] == "4" and r["max_steps"] == "4" for r in rows.values())
    assert rows[f"{SUITE}_lan"]["instruction"] == "place the bowl on the stove"
    assert rows[f"{SUITE}_swap"]["instruction"] == rows[SUITE]["instruction"] == "put the bowl on the stove"
    assert "robustness" in out
    md = (tmp_path / "metrics" / "pro" / "report.md").read_text()
    assert "## Robustness (LIBERO-PRO)" in md and "| suite | standard | lan | swap |" in md
