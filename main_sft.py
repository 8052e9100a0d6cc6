"""Supervised fine-tuning of RDT on LIBERO (full or LoRA), on accelerate + DeepSpeed.

    # one GPU / CPU
    python main_sft.py --config_path configs/tiny.yaml --output_dir checkpoints/tiny --max_train_steps 20
    # DeepSpeed (one node, all GPUs; or --hostfile for several nodes)
    deepspeed main_sft.py --deepspeed configs/zero2.json --pretrained_model_name_or_path robotics-diffusion-transformer/rdt-1b ...
    # torchrun / accelerate launch work too
Model/data settings live in the YAML config (``--set key.path=value`` overrides any of them); the flags
below are the training knobs of the official ``main.py`` plus LoRA and EMA.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys

from configs.errors import exit_cli
from configs.launch import LaunchSettings
from configs.loader import read_preset
from configs.schema import (DATASET_FLAG_ALIASES, LR_SCHEDULERS, MIXED_PRECISIONS, REPORTERS, Config, ConfigError,
                            TrainConfig)


LAUNCH_DEFAULTS = LaunchSettings()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    # --- config & paths
    a("--config_path", default=LAUNCH_DEFAULTS.config_path, help="YAML config (configs/base.yaml, configs/tiny.yaml)")
    a("--set", nargs="*", action="extend", default=None, metavar="KEY=VALUE",
      help="config overrides (repeatable), e.g. dataset.action_encoding=delta")
    a("--deepspeed", default=None, help="DeepSpeed config json (configs/zero2.json, configs/zero3.json)")
    a("--pretrained_model_name_or_path", default=None,
      help="hub id, save_pretrained dir, DeepSpeed mp_rank_00_model_states.pt, or empty for random init")
    a("--pretrained_text_encoder_name_or_path", default=None, help="default: model.text_encoder of the config")
    a("--pretrained_vision_encoder_name_or_path", default=None, help="default: model.vision_encoder of the config")
    a("--output_dir", default=LAUNCH_DEFAULTS.output_dir)
    a("--run_name", default=None, help="name for trackers and outs/videos/<run_name> (default: output dir name)")
    a("--seed", type=int, default=None)
    # --- data
    a("--load_from_hdf5", action="store_true", help="accepted for compatibility: data is always read from HDF5")
    a("--dataset_type", default="finetune", choices=["finetune"], help="only fine-tuning datasets are supported")
    a("--datasets_config", default=None, help="suites table (default: dataset.datasets_config of the config)")
    a("--precomp_lang_embed", nargs="?", const="data/datasets/lang_embeddings", default=None, metavar="DIR",
      help="use precomputed T5 embeddings from DIR (scripts/preprocess_language_embeddings.py) instead of running T5")
    a("--dataloader_num_workers", type=int, default=None)
    a("--image_aug", action="store_true", default=None, help="colour jitter + corruption on the device")
    a("--state_noise_snr", type=float, default=None, help="state noise SNR in dB (e.g. 40)")
    a("--cond_mask_prob", type=float, default=None, help="condition dropout probability (default 0.1)")
    a("--cam_ext_mask_prob", type=float, default=None)
    # --- optimisation
    a("--train_batch_size", type=int, default=None, help="per device")
    a("--gradient_accumulation_steps", type=int, default=None,
      help="default: from train.effective_batch_size / (per-device batch x processes)")
    a("--effective_batch_size", type=int, default=None, help="samples per optimizer step over all processes")
    a("--max_train_steps", type=int, default=None, help="optimizer steps (overrides num_train_epochs)")
    a("--num_train_epochs", type=int, default=None)
    a("--learning_rate", type=float, default=None)
    a("--scale_lr", action="store_true", default=None, help="multiply the LR by batch x accumulation x processes")
    a("--lr_scheduler", default=None,
      choices=LR_SCHEDULERS)
    a("--lr_warmup_steps", type=int, default=None)
    a("--lr_num_cycles", type=int, default=None)
    a("--lr_power", type=float, default=None)
    a("--adam_beta1", type=float, default=None)
    a("--adam_beta2", type=float, default=None)
    a("--adam_weight_decay", type=float, default=None)
    a("--adam_epsilon", type=float, default=None)
    a("--use_8bit_adam", action="store_true", default=None, help="bitsandbytes AdamW8bit (GPU only)")
    a("--fused_adam", action="store_true", default=None, help="torch's fused AdamW kernel (one launch for all parameters)")
    a("--max_grad_norm", type=float, default=None)
    a("--position_loss_weight", type=float, default=None,
      help="weight of the eef position slots in the diffusion MSE (1: the official plain MSE)")
    a("--mixed_precision", default=None, choices=MIXED_PRECISIONS)
    a("--gradient_checkpointing", action="store_true", default=None)
    a("--set_grads_to_none", action="store_true", default=None)
    # --- checkpoints
    a("--checkpointing_period", type=int, default=None)
    a("--checkpoints_total_limit", type=int, default=None)
    a("--resume_from_checkpoint", default=None, help="'latest' or a checkpoint-N folder")
    a("--use_ema", action="store_true", default=None, help="also keep (and save under checkpoint-N/ema) an EMA of the weights")
    # --- validation sampling
    a("--sample_period", type=int, default=None, help="every N steps: sampled-action MSE on train and held-out episodes")
    a("--sample_batch_size", type=int, default=None)
    a("--num_sample_batches", type=int, default=None)
    # --- LoRA
    a("--use_lora", action="store_true", default=None)
    a("--lora_rank", type=int, default=None)
    a("--lora_alpha", type=int, default=None)
    a("--lora_dropout", type=float, default=None)
    a("--lora_target_modules", nargs="*", default=None, help="default: every Linear of the DiT blocks")
    a("--lora_modules_to_save", nargs="*", default=None, help="modules trained in full with LoRA")
    # --- logging
    a("--report_to", default=None, choices=REPORTERS)
    a("--wandb_project", default=None, help="default: $WANDB_PROJECT or rdt-libero")
    a("--log_period", type=int, default=None)
    a("--local_rank", type=int, default=-1, help="set by the deepspeed launcher")
    a("--print_config", action="store_true", help="print the resolved config (preset + --set + flags) and exit")
    return p


TRAIN_FLAGS = tuple(f.name for f in dataclasses.fields(TrainConfig))


def config_from_args(args) -> Config:
    """The resolved typed config: the YAML preset, ``--set`` overrides, then the flags, which are
    aliases that write into it (a flag left out keeps the preset's value; base.yaml holds every
    default). The gradient accumulation is resolved here for this process count."""
    raw = read_preset(args.config_path, args.set or [])
    if not isinstance(raw.get("train"), dict):
        raise ConfigError(f"{args.config_path}: missing the 'train' section (the training recipe)")
    for section, flags in (("train", TRAIN_FLAGS), ("dataset", DATASET_FLAG_ALIASES)):
        for flag in flags:
            value = getattr(args, flag, None)
            if value is not None:
                raw[section][flag] = value
    cfg = Config.from_dict(raw, source=args.config_path)
    t = cfg.train
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if args.gradient_accumulation_steps is None and t.effective_batch_size:
        t.gradient_accumulation_steps = max(1, math.ceil(t.effective_batch_size / (t.train_batch_size * world)))
    t.effective_batch_size = t.train_batch_size * world * t.gradient_accumulation_steps
    return cfg


def main(argv=None) -> int:
    """Parse the flags once into the typed recipe and the typed launch settings; train on them."""
    args = build_parser().parse_args(argv)
    cfg = config_from_args(args)
    launch = LaunchSettings.from_flags(vars(args))
    if args.print_config:
        print(json.dumps(cfg.to_dict(), indent=1, sort_keys=True))
        return 0
    t = cfg.train
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"[main_sft] effective batch {t.effective_batch_size} = {t.train_batch_size} per device x "
              f"{os.environ.get('WORLD_SIZE', '1')} process(es) x {t.gradient_accumulation_steps} accumulation; "
              f"lr {t.learning_rate} ({t.lr_scheduler}, warm-up {t.lr_warmup_steps})", file=sys.stderr)
    from train.train_sft import TrainingDiverged, train

    try:
        train(cfg, launch)
    except TrainingDiverged as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    exit_cli(main)
