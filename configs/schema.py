"""The typed configuration: one dataclass per YAML section, validated once, here.

    cfg = load_typed("configs/tiny.yaml", ["dataset.action_encoding=delta"])   # configs.loader
    cfg.dataset.action_encoding, cfg.model.rdt.depth, cfg.train.learning_rate

The dataclasses declare the keys, their types and their allowed values; they hold no default values.
Every default lives in ``configs/base.yaml`` (the RDT-1B recipe), which every preset inherits, so a
key has exactly one place that sets it. A bad value fails in ``__post_init__`` with the key's dotted
name and what was expected; an unknown key fails with the closest valid name.

The allowed values of the enumerated options are defined here too, and the code that acts on them
(data/, models/, libero_eval/) imports them from this module: the config layer is the lowest one.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from configs.errors import UserError


class ConfigError(UserError, ValueError):
    """A bad config file, key or value."""


# --------------------------------------------------------------------------- allowed values
ENCODINGS = ("abs_goal", "delta")                        # dataset.action_encoding (policy/libero_mapping.py)
IMAGE_VIEWS = ("camera", "rotated_180")                  # dataset.image_view
INSTRUCTION_SOURCES = ("problem_info", "benchmark", "filename")
INSTRUCTION_ALIASES = {"file": "problem_info"}           # a documented spelling of problem_info
CAMERA_SLOTS = ("cam_high", "right_wrist", "left_wrist")  # per history frame, RDT's order
NORMS = ("release_var", "rms")                           # model.rdt.norm (models/blocks)
PREDICTION_TYPES = ("sample", "epsilon")
SCHEDULER_TYPES = ("ddpm",)
LR_SCHEDULERS = ("constant", "constant_with_warmup", "cosine", "linear", "cosine_with_restarts", "polynomial")
MIXED_PRECISIONS = ("no", "fp16", "bf16")
REPORTERS = ("wandb", "tensorboard", "none")
VIDEO_MODES = ("all", "failures", "none")                # eval.video: which trials keep an mp4
EVAL_DTYPES = ("float32", "bfloat16", "float16")
SLOT_SCHEDULES = ("independent", "lockstep")             # eval.slots (libero_eval/runner.py)
# dataset keys that main_sft.py also takes as flags (every train key is one too)
DATASET_FLAG_ALIASES = ("datasets_config", "image_aug", "state_noise_snr", "cond_mask_prob", "cam_ext_mask_prob")


def _one_of(key: str, value: Any, allowed) -> None:
    if value not in allowed:
        raise ConfigError(f"{key} is {value!r}; expected one of {list(allowed)}")


def _at_least(key: str, value: Optional[float], low: float, optional: bool = False) -> None:
    if value is None and optional:
        return
    if value is None or not math.isfinite(value) or value < low:  # a NaN passes `value < low`
        raise ConfigError(f"{key} is {value!r}; expected a number >= {low}{' or null' if optional else ''}")


def _in_unit(key: str, value: float, closed: bool = False) -> None:
    if not (0.0 <= value <= 1.0 if closed else 0.0 <= value < 1.0):  # False for a NaN too
        raise ConfigError(f"{key} is {value!r}; expected a number in [0, 1{']' if closed else ')'}")


# --------------------------------------------------------------------------- sections
@dataclass
class CommonConfig:
    """Geometry shared by the data and the model."""
    img_history_size: int
    action_chunk_size: int
    num_cameras: int
    state_dim: int

    def __post_init__(self) -> None:
        _at_least("common.img_history_size", self.img_history_size, 1)
        _at_least("common.action_chunk_size", self.action_chunk_size, 1)
        if self.num_cameras != len(CAMERA_SLOTS):
            raise ConfigError(f"common.num_cameras is {self.num_cameras}; expected {len(CAMERA_SLOTS)} "
                              f"(slots {list(CAMERA_SLOTS)})")
        if self.state_dim != 128:
            raise ConfigError(f"common.state_dim is {self.state_dim}; expected 128 (RDT's unified vector)")


@dataclass
class DatasetConfig:
    """How LIBERO files become samples, and the condition dropout / augmentation of training."""
    tokenizer_max_length: int
    control_freq: float
    action_encoding: str
    use_joint_state: bool
    filter_noops: bool
    instruction_source: str
    image_view: str
    datasets_config: str
    stats_path: str
    val_fraction: float
    cond_mask_prob: float
    cam_ext_mask_prob: float
    state_noise_snr: Optional[float]
    image_aug: bool

    def __post_init__(self) -> None:
        _one_of("dataset.action_encoding", self.action_encoding, ENCODINGS)
        self.instruction_source = INSTRUCTION_ALIASES.get(self.instruction_source, self.instruction_source)
        _one_of("dataset.instruction_source", self.instruction_source, INSTRUCTION_SOURCES)
        _one_of("dataset.image_view", self.image_view, IMAGE_VIEWS)
        _at_least("dataset.tokenizer_max_length", self.tokenizer_max_length, 1)
        _at_least("dataset.control_freq", self.control_freq, 1e-9)
        _in_unit("dataset.val_fraction", self.val_fraction)
        _in_unit("dataset.cond_mask_prob", self.cond_mask_prob, closed=True)
        if self.cam_ext_mask_prob >= 0:  # < 0: same as cond_mask_prob
            _in_unit("dataset.cam_ext_mask_prob", self.cam_ext_mask_prob, closed=True)


@dataclass
class TrainConfig:
    """The training recipe (main_sft.py's flags of the same names are aliases that write here)."""
    seed: int
    train_batch_size: int
    effective_batch_size: Optional[int]
    gradient_accumulation_steps: int
    num_train_epochs: int
    max_train_steps: Optional[int]
    learning_rate: float
    scale_lr: bool
    lr_scheduler: str
    lr_warmup_steps: int
    lr_num_cycles: int
    lr_power: float
    adam_beta1: float
    adam_beta2: float
    adam_weight_decay: float
    adam_epsilon: float
    use_8bit_adam: bool
    fused_adam: bool
    max_grad_norm: float
    position_loss_weight: float
    mixed_precision: str
    gradient_checkpointing: bool
    set_grads_to_none: bool
    checkpointing_period: int
    checkpoints_total_limit: Optional[int]
    sample_period: int
    sample_batch_size: int
    num_sample_batches: int
    dataloader_num_workers: int
    use_ema: bool
    use_lora: bool
    lora_rank: int
    lora_alpha: int
    lora_dropout: float
    lora_target_modules: Optional[list[str]]
    lora_modules_to_save: list[str]
    report_to: str
    wandb_project: Optional[str]
    log_period: int

    def __post_init__(self) -> None:
        if self.mixed_precision is False:  # YAML reads a bare `no` as false
            self.mixed_precision = "no"
        _one_of("train.mixed_precision", self.mixed_precision, MIXED_PRECISIONS)
        _one_of("train.lr_scheduler", self.lr_scheduler, LR_SCHEDULERS)
        _one_of("train.report_to", self.report_to, REPORTERS)
        for key in ("train_batch_size", "gradient_accumulation_steps", "num_train_epochs", "checkpointing_period",
                    "sample_batch_size", "num_sample_batches", "lora_rank", "log_period"):
            _at_least(f"train.{key}", getattr(self, key), 1)
        for key in ("effective_batch_size", "checkpoints_total_limit"):
            _at_least(f"train.{key}", getattr(self, key), 1, optional=True)
        # 0 steps saves the initialised model: the untrained baseline of the learning bench
        _at_least("train.max_train_steps", self.max_train_steps, 0, optional=True)
        for key in ("lr_warmup_steps", "dataloader_num_workers", "adam_weight_decay", "adam_epsilon", "max_grad_norm"):
            _at_least(f"train.{key}", getattr(self, key), 0)
        _at_least("train.learning_rate", self.learning_rate, 1e-12)
        _at_least("train.position_loss_weight", self.position_loss_weight, 1e-12)
        _in_unit("train.lora_dropout", self.lora_dropout)
        _in_unit("train.adam_beta1", self.adam_beta1)
        _in_unit("train.adam_beta2", self.adam_beta2)


@dataclass
class RDTConfig:
    hidden_size: int
    depth: int
    num_heads: int
    norm: str
    cond_pos_embed_type: str

    def __post_init__(self) -> None:
        _one_of("model.rdt.norm", self.norm, NORMS)
        for key in ("hidden_size", "depth", "num_heads"):
            _at_least(f"model.rdt.{key}", getattr(self, key), 1)
        if self.hidden_size % self.num_heads:
            raise ConfigError(f"model.rdt.hidden_size ({self.hidden_size}) must be a multiple of "
                              f"model.rdt.num_heads ({self.num_heads})")


@dataclass
class NoiseSchedulerConfig:
    type: str
    num_train_timesteps: int
    num_inference_timesteps: int
    beta_schedule: str
    prediction_type: str
    clip_sample: bool

    def __post_init__(self) -> None:
        _one_of("model.noise_scheduler.type", self.type, SCHEDULER_TYPES)
        _one_of("model.noise_scheduler.prediction_type", self.prediction_type, PREDICTION_TYPES)
        _at_least("model.noise_scheduler.num_train_timesteps", self.num_train_timesteps, 1)
        _at_least("model.noise_scheduler.num_inference_timesteps", self.num_inference_timesteps, 1)


@dataclass
class EMAConfig:
    update_after_step: int
    inv_gamma: float
    power: float
    min_value: float
    max_value: float

    def __post_init__(self) -> None:
        _in_unit("model.ema.min_value", self.min_value, closed=True)
        _in_unit("model.ema.max_value", self.max_value, closed=True)


@dataclass
class ModelConfig:
    """The released RDT-1B geometry in base.yaml (pre-trained weights only load into it)."""
    vision_encoder: str
    text_encoder: str
    img_tokens_per_image: int
    lang_adaptor: str
    img_adaptor: str
    state_adaptor: str
    lang_token_dim: int
    img_token_dim: int
    state_token_dim: int
    max_lang_cond_len: int
    rdt: RDTConfig
    noise_scheduler: NoiseSchedulerConfig
    ema: EMAConfig

    def __post_init__(self) -> None:
        for key in ("img_tokens_per_image", "lang_token_dim", "img_token_dim", "state_token_dim", "max_lang_cond_len"):
            _at_least(f"model.{key}", getattr(self, key), 1)


@dataclass
class EvalConfig:
    """The rollout protocol of ``libero_eval.eval_rdt_libero`` (its flags of the same names are
    aliases). ``null`` means "what the run defines": the suite's step budget, the benchmark's settle
    steps, the training data's camera size, the model's DPM steps, bf16 on CUDA / fp32 on the CPU."""
    num_trials: int
    exec_horizon: int
    max_steps: Optional[int]
    num_steps_wait: Optional[int]
    seed: int
    resolution: Optional[int]
    num_inference_steps: Optional[int]
    dtype: Optional[str]
    compile: bool
    num_envs: int
    slots: str
    video: str
    step_timeout: float

    def __post_init__(self) -> None:
        for key in ("num_trials", "exec_horizon", "num_envs"):
            _at_least(f"eval.{key}", getattr(self, key), 1)
        _at_least("eval.seed", self.seed, 0)  # numpy / the simulators take seeds in [0, 2**32)
        for key in ("max_steps", "resolution", "num_inference_steps"):
            _at_least(f"eval.{key}", getattr(self, key), 1, optional=True)
        _at_least("eval.num_steps_wait", self.num_steps_wait, 0, optional=True)
        _at_least("eval.step_timeout", self.step_timeout, 1e-3)
        _one_of("eval.video", self.video, VIDEO_MODES)
        _one_of("eval.slots", self.slots, SLOT_SCHEDULES)
        if self.dtype is not None:
            _one_of("eval.dtype", self.dtype, EVAL_DTYPES)


@dataclass
class Config:
    common: CommonConfig
    dataset: DatasetConfig
    train: TrainConfig
    model: ModelConfig
    eval: EvalConfig

    def __post_init__(self) -> None:
        if self.common.state_dim != self.model.state_token_dim:
            raise ConfigError(f"common.state_dim ({self.common.state_dim}) must equal "
                              f"model.state_token_dim ({self.model.state_token_dim})")
        if self.dataset.tokenizer_max_length > self.model.max_lang_cond_len:
            raise ConfigError(f"dataset.tokenizer_max_length ({self.dataset.tokenizer_max_length}) must be at most "
                              f"model.max_lang_cond_len ({self.model.max_lang_cond_len}): the model has no "
                              f"position for a longer instruction")
        if self.eval.exec_horizon > self.common.action_chunk_size:
            raise ConfigError(f"eval.exec_horizon ({self.eval.exec_horizon}) must be at most "
                              f"common.action_chunk_size ({self.common.action_chunk_size})")

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], source: str = "config") -> "Config":
        """Build and validate; errors are prefixed with ``source`` (the file or checkpoint)."""
        try:
            return _build(cls, raw, "")
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (YAML/JSON-ready): what checkpoints store as the resolved config."""
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------- building
def _type_ok(value: Any, annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if origin is list:
        (item,) = typing.get_args(annotation)
        return isinstance(value, list) and all(_type_ok(v, item) for v in value)
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, annotation)


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def _build(cls: type, raw: Any, prefix: str):
    where = prefix.rstrip(".") or "<top level>"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in raw:
        if key not in hints:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; valid keys: {names}"
            raise ConfigError(f"unknown config key {prefix}{key}{hint}")
    kwargs = {}
    for name in names:
        if name not in raw:
            raise ConfigError(f"missing config key {prefix}{name}")
        annotation, value = hints[name], raw[name]
        if dataclasses.is_dataclass(annotation):
            kwargs[name] = _build(annotation, value, f"{prefix}{name}.")
            continue
        if cls is TrainConfig and name == "mixed_precision" and value is False:
            value = "no"  # YAML 1.1 reads a bare `no` as false
        if not _type_ok(value, annotation):
            raise ConfigError(f"{prefix}{name} is {value!r}; expected {_type_name(annotation)}")
        if isinstance(value, float) and not math.isfinite(value):  # a NaN passes every bound check
            raise ConfigError(f"{prefix}{name} is {value!r}; expected a finite number")
        kwargs[name] = float(value) if annotation is float else value
    return cls(**kwargs)
