"""Typed launch settings (configs/launch.py): what a training run records besides its recipe, and
checkpoints written before they existed (raw flags under train_config.json["args"]) still load."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from configs.launch import FLAG_OF, LaunchSettings
from configs.schema import ConfigError
from tests.conftest import fake_observation

OLD = Path(__file__).resolve().parents[1] / "fixtures" / "checkpoints" / "pre_launch_settings"


def test_checkpoint_written_before_launch_settings_loads_and_predicts_the_same_chunk(tmp_path, monkeypatch):
    from policy.checkpoints import resolve_checkpoint
    from policy.rdt_policy import RDTPolicy
    from scripts.make_tiny_encoders import main as make_tiny_encoders

    # The fixture was trained with --pretrained_{vision,text}_encoder_name_or_path old_launch_encoders/...
    # (relative paths) and a config whose model.*_encoder name folders that do not exist: only the
    # recorded flags lead to the encoders.
    make_tiny_encoders(["--out", str(tmp_path / "old_launch_encoders")])
    ckpt = tmp_path / "checkpoint-2"
    shutil.copytree(OLD / "checkpoint-2", ckpt)
    monkeypatch.chdir(tmp_path)
    record = json.loads((ckpt / "train_config.json").read_text())
    assert "args" in record and "launch" not in record
    ck = resolve_checkpoint(ckpt)
    assert ck.launch.vision_encoder == "old_launch_encoders/siglip"
    assert ck.launch.text_encoder == "old_launch_encoders/t5"
    assert ck.launch.lang_embed_dir is None and ck.config.model.vision_encoder == "not_here/siglip"
    policy = RDTPolicy.from_pretrained(ckpt, "cpu")
    policy.reset(1)
    policy.start_episode(0, seed=3)
    chunk = policy.predict_action([fake_observation(res=64)], "put the bowl on the stove", slots=[0])
    np.testing.assert_allclose(chunk, np.load(OLD / "expected_chunk.npy"), rtol=0, atol=1e-6)


def test_launch_record_round_trips_and_unknown_keys_are_refused():
    launch = LaunchSettings(config_path="configs/tiny.yaml", overrides=("train.seed=3",), output_dir="out/x",
                            vision_encoder="enc/siglip", lang_embed_dir="lang")
    record = {"launch": json.loads(json.dumps(launch.to_dict())), "config": {}}
    assert LaunchSettings.from_record(record) == launch
    with pytest.raises(ConfigError, match=r"x.json: unknown launch setting\(s\) \['vision'\]"):
        LaunchSettings.from_record({"launch": {"vision": "enc"}}, "x.json")
    with pytest.raises(ConfigError, match="launch.vision_encoder must be a path string"):
        LaunchSettings(vision_encoder=3)
    assert LaunchSettings.from_record({"config": {}}) is None  # a policy saved outside training


def test_launch_from_flags_takes_only_the_launch_flags():
    flags = {FLAG_OF["vision_encoder"]: "enc", "set": ["a=1"], "learning_rate": 1e-4, "local_rank": -1,
             "precomp_lang_embed": None}
    launch = LaunchSettings.from_flags(flags)
    assert launch == LaunchSettings(vision_encoder="enc", overrides=("a=1",))
    with pytest.raises(Exception):
        launch.output_dir = "elsewhere"  # frozen: nothing changes it after parsing
