"""The fine-tuning loop: build -> (resume) -> step / log / checkpoint / sample -> final checkpoint.

Reproducibility: the data order comes from ``EpochSampler`` (seed + epoch) and every random draw of
a step (diffusion noise and timesteps, condition dropout, augmentation) from a generator seeded by
(seed, step, micro-batch, rank). Restoring the weights and optimizer state is then enough for a
resumed run to repeat the uninterrupted one exactly.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import resource
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import torch

from configs.errors import UserError
from configs.errors import output_dir as checked_output_dir
from configs.errors import require_file
from configs.launch import LaunchSettings
from configs.schema import Config, ConfigError
from train import checkpointing as ckpt
from policy.batch import BATCH
from policy.checkpoints import TRAIN_CONFIG, checkpoint_config
from policy.rdt_policy import RDTPolicy, load_text_encoder, load_vision_encoder, unwrap_runner
from utils.atomic import atomic_write_text
from utils.faults import maybe_fault

if TYPE_CHECKING:
    from accelerate import Accelerator
    from diffusers.training_utils import EMAModel
    from torch.utils.data import DataLoader

    from data.dataset import LiberoDataset
    from train.sampler import EpochSampler

log = logging.getLogger("train")


class TrainingDiverged(RuntimeError):
    pass


# ---------------------------------------------------------------------------------------- setup
def _ensure_distributed_env() -> None:
    """DeepSpeed initialises torch.distributed even for one process; a plain `python main_sft.py`
    has no launcher variables (and no mpi4py), so provide the single-process ones."""
    for key, value in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1"),
                       ("MASTER_ADDR", "127.0.0.1"), ("MASTER_PORT", str(29500 + os.getpid() % 1000))):
        os.environ.setdefault(key, value)


def build_accelerator(launch: LaunchSettings, cfg: Config, output_dir: Path):
    from accelerate import Accelerator
    from accelerate.utils import DeepSpeedPlugin, ProjectConfiguration

    plugin = None
    if launch.deepspeed_config:
        require_file(launch.deepspeed_config, "--deepspeed")
        _ensure_distributed_env()
        plugin = DeepSpeedPlugin(hf_ds_config=launch.deepspeed_config)
        ds_cfg = plugin.deepspeed_config
        ds_cfg["train_micro_batch_size_per_gpu"] = cfg.train.train_batch_size
        ds_cfg["gradient_accumulation_steps"] = cfg.train.gradient_accumulation_steps
        ds_cfg["gradient_clipping"] = cfg.train.max_grad_norm
    report = None if cfg.train.report_to == "none" else cfg.train.report_to
    if report == "wandb":
        os.environ.setdefault("WANDB_MODE", "offline" if not os.environ.get("WANDB_API_KEY") else "online")
        os.environ.setdefault("WANDB_DIR", str(output_dir))
    import torch

    # Several CPU processes (torchrun without GPUs): accelerate only sets up gloo when told it runs on the
    # CPU; without it every process would train alone. (cpu=True would drop DeepSpeed: not with it.)
    multi_cpu = (plugin is None and not torch.cuda.is_available()
                 and int(os.environ.get("WORLD_SIZE", "1")) > 1)
    accelerator = Accelerator(
        gradient_accumulation_steps=cfg.train.gradient_accumulation_steps,
        mixed_precision=cfg.train.mixed_precision,
        log_with=report,
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "logs")),
        deepspeed_plugin=plugin,
        cpu=multi_cpu,
    )
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if accelerator.num_processes != world:
        hint = (" (accelerate runs DeepSpeed across processes only on GPUs: on the CPU use one process, or "
                "several without --deepspeed)" if plugin is not None and not torch.cuda.is_available() else "")
        raise UserError(f"launched as {world} processes but accelerate set up {accelerator.num_processes}: "
                        f"every process would train alone{hint}")
    return accelerator


def setup_logging(output_dir: Path, is_main: bool) -> None:
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    root = logging.getLogger()
    root.setLevel(logging.INFO if is_main else logging.WARNING)
    if not any(isinstance(h, logging.StreamHandler) for h in root.handlers):
        sh = logging.StreamHandler()
        sh.setFormatter(fmt)
        root.addHandler(sh)
    if is_main:
        fh = logging.FileHandler(output_dir / "training.log")
        fh.setFormatter(fmt)
        root.addHandler(fh)
    for noisy in ("httpx", "urllib3", "PIL", "matplotlib", "h5py"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def trainable_parameters(model) -> list:
    """The parameters the optimiser updates, in module order (the EMA tracks exactly these)."""
    return [p for p in model.parameters() if p.requires_grad]


def step_generator(seed: int, step: int, micro: int, rank: int, device) -> torch.Generator:
    digest = hashlib.sha256(f"{seed}/{step}/{micro}/{rank}".encode()).digest()
    return torch.Generator(device=device).manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))


STATS_KEYS = ("state_mean", "state_std")  # what condition dropout / state noise read (policy/conditioning.py)


def read_stats_file(p: Path) -> dict:
    """The statistics JSON at ``p``: {suite: {key: value}}; anything else is one ``ConfigError`` line."""
    if p.is_dir():
        raise ConfigError(f"dataset.stats_path {p}: is a folder; expected the statistics JSON file")
    try:
        stats = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"dataset.stats_path {p}: not valid JSON ({exc}; truncated?): recompute it with "
                          f"`python -m scripts.compute_dataset_stats`") from None
    if not isinstance(stats, dict) or not all(isinstance(v, dict) for k, v in stats.items() if not k.startswith("_")):
        raise ConfigError(f"dataset.stats_path {p}: expected a JSON object {{suite: {{\"state_mean\": [...], ...}}}}")
    return stats


def _check_stats_entry(p: Path, suite: str, entry: dict, width: int) -> None:
    for key in STATS_KEYS:
        values = entry.get(key)
        ok = (isinstance(values, list) and len(values) == width
              and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values))
        if not ok:
            got = f"{len(values)} values" if isinstance(values, list) else repr(values)[:40]
            raise ConfigError(f"dataset.stats_path {p}: {suite}.{key} is {got}; expected {width} finite numbers "
                              f"(recompute with `python -m scripts.compute_dataset_stats`)")


def load_stats(path: str, suites, required: bool, ds_cfg, width: int = 128) -> dict:
    """The statistics of ``suites``, refusing ones computed for another encoding / state layout
    (their state mean and std describe other vectors)."""
    p = Path(path)
    if not p.exists():
        if required:
            raise ConfigError(f"dataset statistics {p} not found (needed for condition dropout / state "
                              f"noise): run `python -m scripts.compute_dataset_stats`")
        return {}
    stats = read_stats_file(p)
    missing = [s for s in suites if s not in stats]
    if missing and required:
        raise ConfigError(f"dataset.stats_path {p} has no statistics for suite(s) {missing} (it has "
                          f"{sorted(k for k in stats if not k.startswith('_'))}): run `python -m "
                          f"scripts.compute_dataset_stats --suites {' '.join(missing)} --out {p}`")
    for suite in suites:
        if suite not in stats:
            continue
        if required:
            _check_stats_entry(p, suite, stats[suite], width)
        for key in ("action_encoding", "use_joint_state"):
            if key in stats[suite] and stats[suite][key] != getattr(ds_cfg, key):
                raise ConfigError(f"{p}: statistics of {suite!r} were computed with dataset.{key}="
                                  f"{stats[suite][key]!r} but this run uses {getattr(ds_cfg, key)!r}; recompute them "
                                  f"with `python -m scripts.compute_dataset_stats` (and this setting) or pass another "
                                  f"dataset.stats_path")
    return stats


def build_encoders(launch: LaunchSettings, cfg: Config, device, dtype):
    """SigLIP, and T5 unless the language embeddings are precomputed (checked against the model)."""
    vision = load_vision_encoder(launch.vision_encoder or cfg.model.vision_encoder, cfg, dtype, device)
    text = None
    if not launch.lang_embed_dir:
        text = load_text_encoder(launch.text_encoder or cfg.model.text_encoder, cfg, dtype, device)
    return vision, text


@contextlib.contextmanager
def frozen_encoder_loading():
    """Under ZeRO-3, transformers' from_pretrained partitions a model across ranks (zero.Init) while
    transformers' DeepSpeed config is registered; SigLIP/T5 are frozen and never wrapped by
    DeepSpeed, so they must load whole on every rank. (accelerate's zero3_init_context_manager
    re-registers the same stage-3 config, which leaves from_pretrained partitioning.)"""
    from transformers.integrations import deepspeed as hf_ds

    registered = hf_ds._hf_deepspeed_config_weak_ref
    hf_ds.unset_hf_deepspeed_config()
    try:
        yield
    finally:
        hf_ds._hf_deepspeed_config_weak_ref = registered


def numel(p) -> int:
    """Elements of a parameter, also when ZeRO-3 has partitioned it (then ``p.numel()`` is 0)."""
    return int(getattr(p, "ds_numel", p.numel()))


def ema_state_dict(ema, model, full_state_dict: dict) -> dict:
    """The full state dict with the trained entries replaced by their EMA values.

    Built from the EMA's own (whole) shadow tensors, so it is right also when ZeRO-3 has
    partitioned the live parameters (swapping the EMA into them would write into shards)."""
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    shadow = dict(zip(names, ema.shadow_params))
    out = dict(full_state_dict)
    for name, value in shadow.items():
        key = name if name in out else name.replace("_orig_mod.", "")
        if key not in out:
            raise KeyError(f"EMA parameter {name} not in the model state dict")
        out[key] = value.detach().to(out[key].dtype)
    return out


def build_datasets(launch: LaunchSettings, cfg: Config):
    """(training set, held-out set or None) of the config's datasets table."""
    from data.dataset import LiberoDataset

    common = dict(datasets=cfg.dataset.datasets_config, lang_embed_dir=launch.lang_embed_dir,
                  lang_embed_dim=cfg.model.lang_token_dim if launch.lang_embed_dir else None)
    # Hold episodes out only when validation runs: otherwise they would be lost to training.
    validate = cfg.dataset.val_fraction > 0 and cfg.train.sample_period > 0
    train_ds = LiberoDataset(cfg, split="train" if validate else "all", **common)
    if train_ds.lang_store is not None:
        given = launch.text_encoder
        train_ds.lang_store.check_model(given or cfg.model.text_encoder,
                                        "--pretrained_text_encoder_name_or_path" if given else "model.text_encoder")
    val_ds = None
    if validate:
        try:
            val_ds = LiberoDataset(cfg, split="val", **common)
        except Exception as exc:  # e.g. every file has a single demo: nothing to hold out
            log.warning("no held-out episodes for validation (%s); sampling MSE on training episodes only", exc)
    return train_ds, val_ds


def build_optimizer(t, params, lr: float):
    """AdamW over ``params`` with the knobs of ``t`` (the train section) at learning rate ``lr``."""
    if t.use_8bit_adam:
        try:
            import bitsandbytes as bnb
        except ImportError as exc:
            raise ImportError("--use_8bit_adam needs bitsandbytes (pip install bitsandbytes, GPU only)") from exc
        cls = bnb.optim.AdamW8bit
    else:
        cls = torch.optim.AdamW
    fused = {"fused": True} if t.fused_adam and not t.use_8bit_adam else {}
    return cls(params, lr=lr, betas=(t.adam_beta1, t.adam_beta2), weight_decay=t.adam_weight_decay,
               eps=t.adam_epsilon, **fused)


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def register_state_hooks(accelerator, use_lora: bool) -> None:
    """Keep the model out of ``train_state/`` (non-DeepSpeed runs): it is already saved next to it in
    save_pretrained form (or as the LoRA adapter), and a second copy would cost gigabytes at 1B
    (and turn megabyte LoRA checkpoints into full-size ones). On resume it is read back from there."""
    from accelerate.utils import DistributedType

    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        return  # DeepSpeed keeps its own (sharded) module states

    def save_hook(models, weights, output_dir):
        weights.clear()

    def load_hook(models, input_dir):
        from models.loading import SAFE_WEIGHTS, load_state_dict_strict, read_state_dict
        ckpt_dir = Path(input_dir).parent
        while models:
            model = accelerator.unwrap_model(models.pop())
            if use_lora:
                from peft import set_peft_model_state_dict
                result = set_peft_model_state_dict(model, read_state_dict(ckpt_dir / "adapter_model.safetensors"))
                if result.unexpected_keys:
                    raise RuntimeError(f"adapter in {ckpt_dir} has unexpected keys {result.unexpected_keys[:5]}")
            else:
                load_state_dict_strict(unwrap_runner(model), read_state_dict(ckpt_dir / SAFE_WEIGHTS), str(ckpt_dir))

    accelerator.register_save_state_pre_hook(save_hook)
    accelerator.register_load_state_pre_hook(load_hook)


def gpu_utilization(device: torch.device) -> Optional[float]:
    """Percent busy over the last sample period (needs pynvml; None where unavailable)."""
    if device.type != "cuda":
        return None
    try:
        return float(torch.cuda.utilization(device))
    except Exception:  # pynvml missing or NVML unavailable
        return None


class MetricsFile:
    """metrics.jsonl, one line per log event, flushed at once (a crash loses nothing)."""

    def __init__(self, path: Path, enabled: bool):
        self.f = open(path, "a", buffering=1) if enabled else None

    def write(self, record: dict) -> None:
        if self.f:
            self.f.write(json.dumps(record) + "\n")
            self.f.flush()


# ---------------------------------------------------------------------------------------- a run
@dataclass
class Run:
    """What a training run holds while it runs (built once by ``setup``; the counters say where it is)."""
    cfg: Config
    launch: LaunchSettings
    accelerator: "Accelerator"
    output_dir: Path
    run_name: str
    policy: RDTPolicy  # its model is the accelerate / DeepSpeed-prepared runner
    ema: Optional["EMAModel"]
    train_ds: "LiberoDataset"
    val_ds: Optional["LiberoDataset"]
    sampler: "EpochSampler"
    loader: "DataLoader"
    params: list
    optimizer: torch.optim.Optimizer
    lr_scheduler: Any  # a torch LR scheduler (diffusers.optimization.get_scheduler)
    run_info: dict
    metrics_file: MetricsFile
    max_steps: int
    steps_per_epoch: int
    global_step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    resumed_from: Optional[Path] = None

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    @property
    def world(self) -> int:
        return self.accelerator.num_processes

    @property
    def rank(self) -> int:
        return self.accelerator.process_index

    @property
    def device(self) -> torch.device:
        return self.accelerator.device


# A randomly initialised RDT's output layer is zero (the official init), so the loss does not depend on
# anything before it: LoRA on such a base gets zero gradients everywhere and trains nothing.
LORA_NEEDS_BASE = ("--use_lora needs --pretrained_model_name_or_path: a randomly initialised RDT has a "
                   "zero output layer, so no gradient reaches the adapters and nothing would train")


def build_model(launch: LaunchSettings, cfg: Config, accelerator, output_dir: Path):
    """(runner, base the checkpoints refer to, EMA or None); LoRA wraps the runner in adapters."""
    from models.loading import load_runner
    from models.lora import DEFAULT_TARGETS, apply_lora

    runner = load_runner(launch.pretrained_model, cfg)
    base_source = launch.pretrained_model
    if cfg.train.use_lora:
        runner = apply_lora(runner, cfg.train.lora_rank, cfg.train.lora_alpha, cfg.train.lora_dropout,
                            cfg.train.lora_target_modules or DEFAULT_TARGETS, cfg.train.lora_modules_to_save)
    if cfg.train.gradient_checkpointing:
        unwrap_runner(runner).gradient_checkpointing_enable()
    ema = None
    if cfg.train.use_ema:
        from diffusers.training_utils import EMAModel
        e = cfg.model.ema
        # Only what is trained: with LoRA the frozen base would otherwise be copied (4.8 GB fp32 at 1B)
        # into the device memory and into every checkpoint.
        ema = EMAModel(trainable_parameters(runner), decay=e.max_value, min_decay=e.min_value,
                       update_after_step=e.update_after_step, use_ema_warmup=True,
                       inv_gamma=e.inv_gamma, power=e.power)
    return runner, base_source, ema


def build_data(launch: LaunchSettings, cfg: Config, accelerator, vision, text, weight_dtype):
    """(train set, val set or None, the policy's conditioner, sampler, loader, what evaluation needs to know)."""
    from torch.utils.data import DataLoader

    from policy.conditioning import Conditioner, ConditioningOptions
    from policy.batch import collate
    from train.sampler import EpochSampler

    train_ds, val_ds = build_datasets(launch, cfg)
    ds_cfg = cfg.dataset
    options = ConditioningOptions.from_config(ds_cfg)
    stats = load_stats(ds_cfg.stats_path, train_ds.suite_names,
                       required=options.cond_mask_prob > 0 or options.state_noise_snr is not None, ds_cfg=ds_cfg,
                       width=cfg.common.state_dim)
    empty_lang = None
    if launch.lang_embed_dir and options.cond_mask_prob > 0:
        empty_lang = train_ds.lang_store.get("") if "" in train_ds.lang_store else None
    # Everything evaluation needs to rebuild the policy: the resolved typed config, the launch's paths
    # (encoders, language embeddings), and what the data looked like.
    run_info = {"launch": launch.to_dict(), "config": cfg.to_dict(),
                "data": {"suites": train_ds.suite_names, "image_hw": [list(hw) for hw in train_ds.image_sizes()],
                         "instructions": train_ds.task_instructions()}}
    conditioner = Conditioner(vision, text, empty_lang, stats, options, dtype=weight_dtype,
                              num_cameras=cfg.common.num_cameras)
    sampler = EpochSampler.for_dataset(train_ds, seed=cfg.train.seed, rank=accelerator.process_index,
                                       world_size=accelerator.num_processes, drop_last_to=cfg.train.train_batch_size)
    loader = DataLoader(train_ds, batch_size=cfg.train.train_batch_size, sampler=sampler, collate_fn=collate,
                        num_workers=cfg.train.dataloader_num_workers, drop_last=True,
                        persistent_workers=False, pin_memory=accelerator.device.type == "cuda")
    return train_ds, val_ds, conditioner, sampler, loader, run_info


# What a resumed run cannot change: the data position (the sampler's order and where it stopped) and
# the geometry of what the checkpoint holds (weights, LoRA adapter, EMA). Every other change is logged.
RESUME_FIXED = ("common.", "model.rdt.", "model.lang_adaptor", "model.img_adaptor", "model.state_adaptor",
                "model.lang_token_dim", "model.img_token_dim", "model.state_token_dim", "model.img_tokens_per_image",
                "model.max_lang_cond_len", "train.train_batch_size", "train.seed", "train.use_lora",
                "train.lora_rank", "train.lora_target_modules", "train.lora_modules_to_save", "train.use_ema",
                "dataset.datasets_config", "dataset.filter_noops", "dataset.val_fraction", "processes")


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(_flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def _processes(train: dict) -> Optional[int]:
    """The process count a resolved train section was made for (effective = batch x processes x accum)."""
    eff, per = train.get("effective_batch_size"), train["train_batch_size"] * train["gradient_accumulation_steps"]
    return eff // per if eff and eff % per == 0 else None


def resume_config_changes(saved: dict, now: dict) -> tuple[dict, dict]:
    """({key: (checkpoint's, now)} that resuming cannot change, {key: (...)} of every other change)."""
    old, new = _flatten(saved), _flatten(now)
    old["processes"], new["processes"] = _processes(saved["train"]), _processes(now["train"])
    changed = {k: (old.get(k), new.get(k)) for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)}
    fixed = {k: v for k, v in changed.items() if k.startswith(RESUME_FIXED)}
    return fixed, {k: v for k, v in changed.items() if k not in fixed}


def check_resume_config(resume: Optional[str], cfg: Config, output_dir: Path, processes: int) -> None:
    """Compare the train_config.json of the checkpoint ``resume`` names (``--resume_from_checkpoint``)
    with this run's config before anything is loaded."""
    resume_from = ckpt.resolve_resume(resume, output_dir)
    tc = resume_from / TRAIN_CONFIG if resume_from is not None else None
    if tc is None or not tc.is_file():
        return
    try:
        saved = checkpoint_config(json.loads(tc.read_text())["config"], str(tc)).to_dict()
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ConfigError(f"{tc}: unreadable training config ({exc!r}); resume from another checkpoint") from None
    now = cfg.to_dict()
    # the effective batch as this process count makes it (main_sft resolves it the same way)
    now["train"] = {**now["train"], "effective_batch_size":
                    cfg.train.train_batch_size * processes * cfg.train.gradient_accumulation_steps}
    fixed, other = resume_config_changes(saved, now)
    if fixed:
        listing = "; ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in fixed.items())
        raise ConfigError(f"--resume_from_checkpoint {resume_from}: this run changes what a resumed run must keep "
                          f"({listing}): the data position or the model would not carry over. Resume with the "
                          f"checkpoint's settings ({tc}), or start a new --output_dir with "
                          f"--pretrained_model_name_or_path {resume_from}")
    for key, (a, b) in other.items():
        log.warning("resuming %s with %s changed: %r -> %r", resume_from.name, key, a, b)


def resume_state(run: Run) -> None:
    """Weights, optimizer, scheduler, EMA, RNG and the position in the data of ``--resume_from_checkpoint``."""
    launch, cfg = run.launch, run.cfg
    resume_from = ckpt.resolve_resume(launch.resume_from_checkpoint, run.output_dir)
    if resume_from is None:
        if launch.resume_from_checkpoint == "latest":
            log.info("--resume_from_checkpoint latest: no checkpoint in %s yet, starting fresh", run.output_dir)
        return
    try:
        run.accelerator.load_state(str(resume_from / "train_state"),
                                   **({"load_module_strict": False} if cfg.train.use_lora and launch.deepspeed_config else {}))
    except UserError:
        raise
    except (RuntimeError, OSError, EOFError, ValueError, KeyError) as exc:  # a truncated optimizer / RNG file
        raise UserError(f"--resume_from_checkpoint {resume_from}: cannot load its training state "
                        f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); truncated or "
                        f"corrupt? Resume from an earlier checkpoint") from exc
    if run.ema is not None:
        run.ema.to(run.device)  # load_state puts its tensors back where they were saved from (the CPU)
    state = ckpt.read_state(resume_from)
    run.global_step, run.epoch, run.batch_in_epoch = state["global_step"], state["epoch"], state["batch_in_epoch"]
    run.resumed_from = resume_from
    log.info("resumed from %s at step %d (epoch %d, batch %d)", resume_from, run.global_step, run.epoch,
             run.batch_in_epoch)


def setup(cfg: Config, launch: LaunchSettings) -> Run:
    """Accelerator, encoders, model (+ LoRA / EMA), data, optimizer and scheduler; resumed if asked."""
    from diffusers.optimization import get_scheduler

    if cfg.train.use_lora and not launch.pretrained_model:
        raise UserError(LORA_NEEDS_BASE)
    output_dir = checked_output_dir(launch.output_dir, "--output_dir")
    accelerator = build_accelerator(launch, cfg, output_dir)
    setup_logging(output_dir, accelerator.is_main_process)
    check_resume_config(launch.resume_from_checkpoint, cfg, output_dir, accelerator.num_processes)
    device = accelerator.device
    weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(accelerator.mixed_precision, torch.float32)
    if accelerator.is_main_process:
        ckpt.remove_partial(output_dir)
    torch.manual_seed(cfg.train.seed)
    if device.type == "cpu" and "OMP_NUM_THREADS" not in os.environ:
        # Leave a core to each dataloader worker: an oversubscribed torch thread pool on a busy CPU
        # slows every op down by orders of magnitude.
        torch.set_num_threads(max(1, (os.cpu_count() or 1) - cfg.train.dataloader_num_workers))

    with frozen_encoder_loading():
        vision, text = build_encoders(launch, cfg, device, weight_dtype)
    runner, base_source, ema = build_model(launch, cfg, accelerator, output_dir)
    train_ds, val_ds, conditioner, sampler, loader, run_info = build_data(launch, cfg, accelerator, vision, text,
                                                                           weight_dtype)
    policy = RDTPolicy(runner, conditioner, cfg, base_source=base_source)
    if accelerator.is_main_process:
        atomic_write_text(output_dir / TRAIN_CONFIG, json.dumps(run_info, indent=2))
    steps_per_epoch = max(1, len(sampler) // cfg.train.train_batch_size // cfg.train.gradient_accumulation_steps)
    # 0 steps is meaningful: it saves the initialised model (an untrained baseline for evaluation)
    t = cfg.train
    max_steps = t.max_train_steps if t.max_train_steps is not None else t.num_train_epochs * steps_per_epoch

    lr = t.learning_rate * (t.gradient_accumulation_steps * t.train_batch_size * accelerator.num_processes
                            if t.scale_lr else 1)
    params = trainable_parameters(runner)
    optimizer = build_optimizer(t, params, lr)
    lr_scheduler = get_scheduler(t.lr_scheduler, optimizer, num_warmup_steps=t.lr_warmup_steps,
                                 num_training_steps=max_steps, num_cycles=t.lr_num_cycles, power=t.lr_power)
    policy.model, optimizer = accelerator.prepare(runner, optimizer)
    register_state_hooks(accelerator, cfg.train.use_lora)
    accelerator.register_for_checkpointing(lr_scheduler)
    if ema is not None:
        ema.to(device)
        accelerator.register_for_checkpointing(ema)
        log.info("EMA of %d trainable tensors (%.2fM values)", len(ema.shadow_params),
                 sum(p.numel() for p in ema.shadow_params) / 1e6)

    run = Run(cfg, launch, accelerator, output_dir, launch.run_name or output_dir.name, policy, ema, train_ds, val_ds,
              sampler, loader, params, optimizer, lr_scheduler, run_info,
              MetricsFile(output_dir / "metrics.jsonl", accelerator.is_main_process), max_steps, steps_per_epoch)
    resume_state(run)
    if accelerator.log_with and run.is_main:
        flat = {f"{section}.{k}": v for section, values in cfg.to_dict().items() if section != "model"
                for k, v in values.items() if isinstance(v, (int, float, str, bool))}
        accelerator.init_trackers(cfg.train.wandb_project or os.environ.get("WANDB_PROJECT", "rdt-libero"),
                                  config=flat, init_kwargs={"wandb": {"name": run.run_name}})
    log.info("training %s: %d samples (%d suites), %.2fM trainable params, batch %d x accum %d x %d proc, "
             "%d steps (%d per epoch)", run.run_name, len(train_ds), len(train_ds.suite_names),
             sum(numel(p) for p in params) / 1e6, cfg.train.train_batch_size, cfg.train.gradient_accumulation_steps,
             run.world, max_steps, steps_per_epoch)
    return run


# ---------------------------------------------------------------------------------------- steps
class CheckpointWriteError(UserError, OSError):
    """A checkpoint that could not be written for want of space (the previous ones are intact)."""


def _disk_full(exc: BaseException, folder: Path) -> bool:
    """ENOSPC anywhere in the chain, or a library's write failure (torch: "unexpected pos ...",
    "file write failed"; safetensors: "os error 28") while the filesystem is (nearly) full."""
    import errno

    seen: Optional[BaseException] = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        seen = seen.__cause__ or seen.__context__
    text = str(exc)
    if "No space left" in text or "os error 28" in text:
        return True
    write_failure = any(s in text for s in ("unexpected pos", "file write failed", "write failed"))
    return write_failure and shutil.disk_usage(folder).free < 64 * 2**20


def _write_checkpoint(run: Run, tmp: Path, step: int) -> Path:
    launch, cfg, acc = run.launch, run.cfg, run.accelerator
    ds_kwargs = {"exclude_frozen_parameters": True} if cfg.train.use_lora and launch.deepspeed_config else {}
    acc.save_state(str(tmp / "train_state"), **ds_kwargs)
    state_dict = acc.get_state_dict(run.policy.model)
    # Every rank has written its part (RNG states, shards) before the folder is renamed into place.
    acc.wait_for_everyone()
    final = tmp.with_name(tmp.name[:-4])
    if run.is_main:
        # state_dict is the gathered whole model (ZeRO-3 shards are empty tensors in the live model)
        run.policy.save_pretrained(tmp, state_dict=state_dict, run_info=run.run_info)
        if run.ema is not None:
            run.policy.save_pretrained(tmp / "ema", state_dict=ema_state_dict(run.ema, run.policy.runner, state_dict),
                                       run_info=run.run_info)
        maybe_fault("kill_in_checkpoint", step)
        final = ckpt.finalize(tmp, {"global_step": step, "epoch": run.epoch, "batch_in_epoch": run.batch_in_epoch,
                                    "run_name": run.run_name, "seed": cfg.train.seed,
                                    "config_path": launch.config_path})
    return final


def save_checkpoint(run: Run, step: int) -> Path:
    """``checkpoint-<step>/``: weights in save_pretrained form (or the LoRA adapter), EMA, the
    accelerate/DeepSpeed train state, train_config.json; renamed into place once complete. A full
    disk ends the run with one line naming the last complete checkpoint."""
    acc = run.accelerator
    tmp = ckpt.temp_dir_for(run.output_dir, step)
    if run.is_main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    acc.wait_for_everyone()
    try:
        final = _write_checkpoint(run, tmp, step)
    except (OSError, RuntimeError) as exc:
        if not _disk_full(exc, run.output_dir):
            raise
        free = shutil.disk_usage(run.output_dir).free / 2**20
        shutil.rmtree(tmp, ignore_errors=True)
        last = ckpt.complete_checkpoints(run.output_dir)
        raise CheckpointWriteError(
            f"no space left on the device of {run.output_dir} while writing checkpoint-{step} ({free:.0f} MB were "
            f"free; the partial checkpoint is removed). Last complete checkpoint: "
            f"{last[-1][1] if last else 'none'}: free some space, then resume with --resume_from_checkpoint latest "
            f"(or lower --checkpoints_total_limit)") from exc
    if run.is_main:
        ckpt.prune(run.output_dir, run.cfg.train.checkpoints_total_limit)
        log.info("saved %s", final)
    acc.wait_for_everyone()
    return final


def maybe_sample(run: Run, step: int) -> None:
    """Every ``--sample_period`` steps: sampled-action MSE / l2err on training and held-out episodes
    (each process samples its share of one fixed subset; the sums are reduced) and a plot of one chunk."""
    cfg, acc = run.cfg, run.accelerator
    if cfg.train.sample_period <= 0 or step % cfg.train.sample_period:
        return
    from train.sample import plot_chunks, sample_mse

    def sum_over_processes(t: torch.Tensor) -> torch.Tensor:
        return acc.reduce(t, reduction="sum") if run.world > 1 else t

    with acc.autocast():  # the conditions are in weight_dtype, as in training steps
        shard = dict(seed=cfg.train.seed, rank=run.rank, world_size=run.world, reduce=sum_over_processes)
        metrics, example = sample_mse(run.policy, run.train_ds, cfg.train.sample_batch_size,
                                      cfg.train.num_sample_batches, **shard)
        if run.val_ds is not None:
            val_metrics, val_example = sample_mse(run.policy, run.val_ds, cfg.train.sample_batch_size,
                                                  cfg.train.num_sample_batches, prefix="val/", **shard)
            metrics.update(val_metrics)
            example = val_example or example
    if run.is_main:
        log.info("step %d sampling: %s", step, ", ".join(f"{k} {v:.5f}" for k, v in sorted(metrics.items())))
        acc.log(metrics, step=step)
        run.metrics_file.write({"step": step, **metrics})
        if example is not None:
            plot_chunks(example, Path("outs/videos") / run.run_name / f"step-{step:07d}.png", step)


def train_micro_step(run: Run, batch: dict, micro: int, timer) -> tuple[torch.Tensor, torch.Tensor, Any]:
    """Forward + backward of one micro-batch; the optimizer steps when accumulation is complete.
    Returns (loss, loss on the active slots, grad norm or None)."""
    acc = run.accelerator
    with acc.accumulate(run.policy.model):
        gen = step_generator(run.cfg.train.seed, run.global_step, micro, run.rank, run.device)
        loss, active = run.policy.compute_loss(batch, gen, timing=timer.encoding)
        loss = maybe_fault("nan_loss", run.global_step + 1, loss)  # the step this micro-batch belongs to
        acc.backward(loss)
        grad_norm = None
        if acc.sync_gradients:
            grad_norm = acc.clip_grad_norm_(run.params, run.cfg.train.max_grad_norm)
        run.optimizer.step()
        run.optimizer.zero_grad(set_to_none=run.cfg.train.set_grads_to_none)
    return loss, active, grad_norm


class StepLog:
    """Averages micro-batch losses into one record per optimizer step; every ``--log_period`` steps
    (and the first and last) adds throughput, memory, learning rate and the data-wait / encode shares."""

    def __init__(self, run: Run, timer):
        self.run, self.timer = run, timer
        self.micro, self.loss, self.active, self.samples = 0, 0.0, 0.0, 0
        self.t_last = time.perf_counter()

    def add(self, loss: torch.Tensor, active: torch.Tensor, batch_size: int) -> None:
        self.micro += 1
        self.loss += loss.detach().float().item()
        self.active += active.float().item()
        self.samples += batch_size * self.run.world

    def step_done(self, grad_norm) -> float:
        """Writes the record of the step that just ended; returns its loss."""
        run = self.run
        loss, active = self.loss / self.micro, self.active / self.micro
        self.micro, self.loss, self.active = 0, 0.0, 0.0
        step, lr = run.global_step, run.lr_scheduler.get_last_lr()[0]
        if step % run.cfg.train.log_period == 0 or step == 1 or step == run.max_steps:
            now = time.perf_counter()
            record = {"step": step, "loss": loss, "loss_active_slots": active, "lr": lr,
                      "grad_norm": float(grad_norm) if grad_norm is not None else None,
                      "samples_per_s": self.samples / max(now - self.t_last, 1e-9),
                      "peak_mem_mb": peak_memory_mb(run.device), "gpu_util": gpu_utilization(run.device),
                      "epoch": run.epoch, **self.timer.shares()}
            self.t_last, self.samples = now, 0
            self.timer.reset()
            run.accelerator.log({k: v for k, v in record.items() if v is not None}, step=step)
        else:
            record = {"step": step, "loss": loss}
        run.metrics_file.write(record)
        return loss


def check_finite(run: Run, loss: float) -> None:
    if not math.isfinite(loss):
        last = ckpt.complete_checkpoints(run.output_dir)
        raise TrainingDiverged(
            f"non-finite loss ({loss}) at step {run.global_step}; stopping without saving. Last good "
            f"checkpoint: {last[-1][1] if last else 'none'} (resume with --resume_from_checkpoint latest, "
            f"perhaps with a lower --learning_rate or more --lr_warmup_steps)")


# ---------------------------------------------------------------------------------------- loop
def train(cfg: Config, launch: LaunchSettings) -> Path:
    """Train until ``max_steps``: step, log, checkpoint, sample; returns the final checkpoint.
    ``cfg`` is the resolved typed recipe; ``launch`` the run's paths (``configs.launch``)."""
    from tqdm.auto import tqdm

    from train.timing import StepShares

    run = setup(cfg, launch)
    run.policy.train()
    # a context: the bar is closed before an error line (it would otherwise print after it at exit)
    with tqdm(total=run.max_steps, initial=run.global_step, disable=not run.is_main, desc="train",
              dynamic_ncols=True) as progress:
        timer = StepShares(run.device)
        steplog = StepLog(run, timer)
        last_saved = run.global_step if run.resumed_from is not None else -1
        while run.global_step < run.max_steps:
            run.sampler.set_epoch(run.epoch, skip=run.batch_in_epoch * cfg.train.train_batch_size)
            timer.work_done()
            for batch in run.loader:
                timer.fetched()
                loss, active, grad_norm = train_micro_step(run, batch, steplog.micro, timer)
                run.batch_in_epoch += 1
                steplog.add(loss, active, batch[BATCH.state].shape[0])
                if not run.accelerator.sync_gradients:
                    timer.work_done()
                    continue
                run.lr_scheduler.step()
                run.global_step += 1
                step_loss = steplog.step_done(grad_norm)
                check_finite(run, step_loss)
                if run.ema is not None:
                    run.ema.step(trainable_parameters(run.policy.runner))
                progress.update(1)
                progress.set_postfix(loss=f"{step_loss:.4f}", lr=f"{run.lr_scheduler.get_last_lr()[0]:.2e}")
                if run.global_step % cfg.train.checkpointing_period == 0:
                    save_checkpoint(run, run.global_step)
                    last_saved = run.global_step
                maybe_sample(run, run.global_step)
                maybe_fault("kill", run.global_step)
                if run.global_step >= run.max_steps:
                    break
                timer.work_done()
            else:
                run.epoch, run.batch_in_epoch = run.epoch + 1, 0
                continue
            break
    final = run.output_dir / f"checkpoint-{run.global_step}"
    if last_saved != run.global_step:
        final = save_checkpoint(run, run.global_step)
    run.accelerator.end_training()
    log.info("done: %d steps; final checkpoint %s", run.global_step, final)
    return final
