"""The typed config: every preset loads into it, each default lives in base.yaml only, a bad key or
value fails once with its dotted name, and configs saved by older versions still load."""
import dataclasses
import json
import typing
from pathlib import Path

import pytest

import main_sft
from configs.loader import load_typed, read_preset
from configs.schema import Config, ConfigError, TrainConfig
from policy.checkpoints import checkpoint_config

REPO = Path(__file__).resolve().parents[2]
PRESETS = sorted(p.name for p in (REPO / "configs").glob("*.yaml"))


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_loads_typed_and_round_trips(preset):
    cfg = load_typed(f"configs/{preset}")
    assert isinstance(cfg.model.rdt.depth, int) and isinstance(cfg.train.learning_rate, float)
    assert Config.from_dict(cfg.to_dict()) == cfg
    if preset != "base.yaml":  # presets change knobs; base.yaml sets every default
        assert "inherit" in (REPO / "configs" / preset).read_text()


def test_the_schema_holds_no_default_values():
    """base.yaml is the one place a default is set: no dataclass field of the schema has one."""
    seen = []
    stack = [Config]
    while stack:
        cls = stack.pop()
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            seen.append(f.name)
            assert f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING, f.name
            if dataclasses.is_dataclass(hints[f.name]):
                stack.append(hints[f.name])
    assert len(seen) > 80


def test_main_sft_flags_default_to_the_config():
    """A flag of a config key is an alias: left out, it must not override the preset (default None)."""
    parser = main_sft.build_parser()
    defaults = {a.dest: a.default for a in parser._actions}
    aliases = [f.name for f in dataclasses.fields(TrainConfig)] + list(main_sft.DATASET_FLAG_ALIASES)
    assert set(aliases) <= set(defaults), set(aliases) - set(defaults)
    assert {k: defaults[k] for k in aliases if defaults[k] is not None} == {}


@pytest.mark.parametrize("override,message", [
    ("dataset.action_encoding=velocity", "dataset.action_encoding is 'velocity'; expected one of ['abs_goal', 'delta']"),
    ("train.lr_scheduler=cosin", "train.lr_scheduler is 'cosin'; expected one of"),
    ("model.rdt.norm=layer", "model.rdt.norm is 'layer'; expected one of ['release_var', 'rms']"),
    ("train.train_batch_size=0", "train.train_batch_size is 0; expected a number >= 1"),
    ("train.learning_rate=fast", "train.learning_rate is 'fast'; expected float"),
    ("dataset.val_fraction=1.5", "dataset.val_fraction is 1.5; expected a number in [0, 1)"),
    ("model.rdt.num_heads=3", "model.rdt.hidden_size (64) must be a multiple of model.rdt.num_heads (3)"),
    ("dataset.tokenizer_max_length=200", "dataset.tokenizer_max_length (200) must be at most model.max_lang_cond_len"),
])
def test_bad_values_name_the_key_and_what_is_allowed(override, message):
    with pytest.raises(ConfigError) as err:
        load_typed("configs/tiny.yaml", [override])
    assert message in str(err.value) and "tiny.yaml" in str(err.value)


def test_unknown_and_missing_keys():
    raw = read_preset("configs/tiny.yaml")
    raw["train"]["learning_rat"] = 1.0
    with pytest.raises(ConfigError, match="unknown config key train.learning_rat; did you mean 'learning_rate'"):
        Config.from_dict(raw)
    raw = read_preset("configs/tiny.yaml")
    del raw["model"]["rdt"]["depth"]
    with pytest.raises(ConfigError, match="missing config key model.rdt.depth"):
        Config.from_dict(raw)


def test_mixed_precision_no_survives_yaml():
    assert load_typed("configs/tiny.yaml", ["train.mixed_precision=no"]).train.mixed_precision == "no"


def test_config_saved_by_an_older_version_loads():
    """A train_config.json from before the typed config: no rdt.norm, none of the optimiser keys that
    were flags then, a key since removed. Its own values are kept, the rest come from base.yaml."""
    old = read_preset("configs/tiny.yaml")
    del old["model"]["rdt"]["norm"]
    for key in ("seed", "adam_beta1", "use_lora", "lora_modules_to_save", "log_period"):
        del old["train"][key]
    old["dataset"]["retired_option"] = 3
    cfg = checkpoint_config(json.loads(json.dumps(old)), "old/train_config.json", ["dataset.action_encoding=delta"])
    assert cfg.model.rdt.norm == "rms"  # a non-released geometry saved before the field: true RMSNorm
    assert cfg.model.rdt.hidden_size == 64 and cfg.train.train_batch_size == 4
    assert cfg.train.adam_beta1 == 0.9 and cfg.train.lora_modules_to_save == ["state_adaptor"]
    assert cfg.dataset.action_encoding == "delta"


def test_eval_flags_default_to_the_config():
    from libero_eval import eval_rdt_libero as ev
    from libero_eval.settings import EVAL_FLAGS

    defaults = {a.dest: a.default for a in ev.build_parser()._actions}
    assert set(EVAL_FLAGS) <= set(defaults)
    assert {k: defaults[k] for k in EVAL_FLAGS if defaults[k] is not None} == {}


def test_zero_training_steps_is_a_valid_run():
    """max_train_steps 0 saves the initialised model (the learning bench's untrained baseline)."""
    assert load_typed("configs/learn.yaml", ["train.max_train_steps=0"]).train.max_train_steps == 0
    with pytest.raises(ConfigError, match="train.max_train_steps is -1"):
        load_typed("configs/learn.yaml", ["train.max_train_steps=-1"])
