"""What a training launch needs besides the recipe: where its inputs are and where its outputs go.

The recipe (model, data, optimisation) is the typed ``configs.schema.Config``; a run's paths are not
part of it, so two runs of one recipe on two machines share a config and differ here only.
``main_sft.py`` parses its flags into both once; ``train.train_sft.train`` takes the two typed objects,
and every checkpoint stores these settings under ``train_config.json["launch"]``, where evaluation
reads the encoder and language-embedding paths by field name.

Checkpoints written before these settings existed stored the raw flag dict under ``"args"``;
``LaunchSettings.from_record`` reads both forms.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from configs.schema import ConfigError

# field -> the main_sft.py flag that sets it (also the key under which checkpoints written before
# these settings existed recorded it, in train_config.json["args"])
FLAG_OF = {
    "config_path": "config_path",
    "overrides": "set",
    "output_dir": "output_dir",
    "run_name": "run_name",
    "pretrained_model": "pretrained_model_name_or_path",
    "vision_encoder": "pretrained_vision_encoder_name_or_path",
    "text_encoder": "pretrained_text_encoder_name_or_path",
    "lang_embed_dir": "precomp_lang_embed",
    "deepspeed_config": "deepspeed",
    "resume_from_checkpoint": "resume_from_checkpoint",
}


@dataclass(frozen=True)
class LaunchSettings:
    """One training launch's paths (``None``: not given; the config's value, or none, applies)."""
    config_path: str = "configs/base.yaml"  # the YAML preset the recipe was read from
    overrides: tuple[str, ...] = ()  # its ``--set key=value`` overrides, as given
    output_dir: str = "checkpoints/rdt-finetune"
    run_name: Optional[str] = None  # trackers and outs/videos/<run_name>; default: the output folder's name
    pretrained_model: Optional[str] = None  # hub id, save_pretrained folder or DeepSpeed .pt; None: random init
    vision_encoder: Optional[str] = None  # overrides model.vision_encoder
    text_encoder: Optional[str] = None  # overrides model.text_encoder
    lang_embed_dir: Optional[str] = None  # precomputed T5 embeddings (then T5 is not loaded)
    deepspeed_config: Optional[str] = None  # DeepSpeed JSON; None: plain accelerate
    resume_from_checkpoint: Optional[str] = None  # "latest" or a checkpoint-N folder

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "overrides":
                if not (isinstance(value, tuple) and all(isinstance(v, str) for v in value)):
                    raise ConfigError(f"launch.overrides must be a tuple of KEY=VALUE strings, got {value!r}")
            elif value is not None and not isinstance(value, str):
                raise ConfigError(f"launch.{f.name} must be a path string or null, got {value!r}")
            elif f.name in ("config_path", "output_dir") and not value:
                raise ConfigError(f"launch.{f.name} must be a non-empty path, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["overrides"] = list(self.overrides)
        return d

    @classmethod
    def from_flags(cls, flags: Mapping[str, Any]) -> "LaunchSettings":
        """From a mapping of flag names (``FLAG_OF``'s values) to values; flags left out or ``None``
        keep the field's default; every other key is ignored (the recipe's flags, launcher flags)."""
        values = {}
        for name, flag in FLAG_OF.items():
            value = flags.get(flag)
            if value is not None:
                values[name] = tuple(value) if name == "overrides" else value
        return cls(**values)

    @classmethod
    def from_record(cls, record: Mapping[str, Any], source: str = "train_config.json") -> Optional["LaunchSettings"]:
        """From a checkpoint's ``train_config.json``: its ``"launch"`` object, or for a checkpoint
        written before it existed the raw flag dict under ``"args"`` (flag names, see ``FLAG_OF``);
        None when the record has neither (a policy saved outside training)."""
        if "launch" in record:
            raw = record["launch"]
            if not isinstance(raw, Mapping):
                raise ConfigError(f"{source}: 'launch' must be a JSON object, got {type(raw).__name__}")
            unknown = sorted(set(raw) - set(FLAG_OF))
            if unknown:
                raise ConfigError(f"{source}: unknown launch setting(s) {unknown}; expected some of {sorted(FLAG_OF)}")
            values = dict(raw)
            if "overrides" in values:
                values["overrides"] = tuple(values["overrides"] or ())
            return cls(**values)
        if "args" not in record:
            return None
        legacy = record["args"] or {}
        if not isinstance(legacy, Mapping):
            raise ConfigError(f"{source}: 'args' must be a JSON object, got {type(legacy).__name__}")
        return cls.from_flags(legacy)
