"""The training recipe lives in the config: `python main_sft.py` and the launchers resolve to the same
numbers, and the launchers pass no training knob of their own."""
import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from configs.schema import DATASET_FLAG_ALIASES, TrainConfig

REPO = Path(__file__).resolve().parents[2]
# every training knob (a train key) and every dataset key main_sft.py takes as a flag
KNOBS = tuple(f.name for f in dataclasses.fields(TrainConfig)) + DATASET_FLAG_ALIASES


def resolved(cmd, **env) -> dict:
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHON": sys.executable, **env})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout[proc.stdout.index("{"):])


def test_main_sft_defaults_are_the_recipe():
    cfg = resolved([sys.executable, "main_sft.py", "--print_config"])
    t = cfg["train"]
    assert (t["effective_batch_size"], t["train_batch_size"], t["gradient_accumulation_steps"]) == (256, 32, 8)
    assert (t["learning_rate"], t["lr_scheduler"], t["lr_warmup_steps"]) == (1e-4, "constant_with_warmup", 5000)
    assert cfg["dataset"]["image_aug"] is True and cfg["dataset"]["state_noise_snr"] == 40


@pytest.mark.parametrize("world,batch,accum", [("8", None, 1), ("4", "16", 4), ("3", None, 3)])
def test_accumulation_reaches_the_effective_batch_for_the_process_count(world, batch, accum):
    cmd = [sys.executable, "main_sft.py", "--print_config"] + (["--train_batch_size", batch] if batch else [])
    t = resolved(cmd, WORLD_SIZE=world)["train"]
    assert t["gradient_accumulation_steps"] == accum
    assert t["effective_batch_size"] == int(world) * t["train_batch_size"] * accum >= 256


@pytest.mark.parametrize("launcher,preset", [("finetune_sft.sh", "base.yaml"), ("finetune_lora_sft.sh", "lora.yaml")])
def test_launchers_train_with_the_same_numbers(launcher, preset):
    direct = resolved([sys.executable, "main_sft.py", "--config_path", f"configs/{preset}", "--print_config"])
    via = resolved(["bash", launcher, "--print_config"], PRETRAINED="")
    for section in ("train", "dataset", "model"):
        a = {k: v for k, v in direct[section].items() if k != "mixed_precision"}  # the CPU launcher forces "no"
        b = {k: v for k, v in via[section].items() if k != "mixed_precision"}
        assert a == b, section


def test_launchers_pass_no_training_knob():
    for launcher in ("finetune_sft.sh", "finetune_lora_sft.sh", "scripts/launch_common.sh"):
        text = "\n".join(line.split(" #")[0] for line in (REPO / launcher).read_text().splitlines()
                         if not line.lstrip().startswith("#"))
        found = [k for k in KNOBS if re.search(rf"--{k}\b", text) and k != "mixed_precision"]
        assert not found, f"{launcher} sets {found}: knobs belong in the config"


@pytest.mark.parametrize("preset", sorted(p.name for p in (REPO / "configs").glob("*.yaml")))
def test_every_preset_resolves(preset):
    cfg = resolved([sys.executable, "main_sft.py", "--config_path", f"configs/{preset}", "--print_config"])
    assert set(cfg["train"]) >= {"train_batch_size", "learning_rate", "gradient_accumulation_steps"}


@pytest.mark.parametrize("launcher", ["eval_with_video.sh", "eval_with_video_subEnv.sh"])
def test_eval_launchers_pass_the_protocol_only_when_asked(launcher):
    """The protocol's numbers live in the eval section of the config; the launchers' variables are
    empty unless set, so `bash eval_with_video.sh` evaluates exactly like the CLI."""
    text = (REPO / launcher).read_text()
    for var in ("NUM_TRAJ", "EXEC_HORIZON", "NUM_ENVS", "VIDEO", "SEEDS"):
        assert re.search(rf"^{var}=\$\{{{var}:-\}}", text, re.M), f"{launcher}: {var} has a default of its own"
