"""The pipeline learns: expert demos recorded in the simulator -> main_sft.py -> libero_eval, and the
trained policy succeeds in closed loop where the same policy before training does not.

A shortened ``scripts/bench_learning`` run (one short task, few demos, a short schedule). Its numbers
were chosen from repeated local runs over several seeds (see the README's learning-bench section);
``RDT_LEARNING_SEED`` picks the seed (CI: the default).
"""
import json
import os

import pytest

from scripts import bench_learning

pytestmark = [pytest.mark.slow, pytest.mark.sim]

TASK = "libero_goal/turn_on_the_stove"
EPISODES, STEPS, TRIALS, MAX_STEPS = 10, 400, 10, 150
MIN_TRAINED_SUCCESSES = 4


def test_trained_policy_succeeds_where_untrained_fails(tmp_path):
    seed = int(os.environ.get("RDT_LEARNING_SEED", "0"))
    enc = tmp_path / "encoders"
    rc = bench_learning.main([
        "--tasks", TASK, "--episodes", str(EPISODES), "--steps", str(STEPS), "--trials", str(TRIALS),
        "--max_steps", str(MAX_STEPS), "--horizons", "8", "--diag_horizon", "0", "--replay_trials", "0",
        "--baseline", "--seed", str(seed), "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "run"),
        "--set", f"model.vision_encoder={enc / 'siglip'}", f"model.text_encoder={enc / 't5'}",
        f"train.checkpointing_period={STEPS}", "train.sample_period=-1"])
    assert rc == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())["tasks"][TASK]
    assert results["expert"]["successes"] >= 0.9 * TRIALS, results["expert"]
    untrained, trained = results["untrained"], results["h8"]
    assert untrained["n"] == trained["n"] == TRIALS
    assert untrained["successes"] == 0, untrained
    assert trained["successes"] >= MIN_TRAINED_SUCCESSES, trained
    assert trained["video"] and trained["video"].endswith("_success.mp4")
