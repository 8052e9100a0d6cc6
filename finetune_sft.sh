#!/usr/bin/env bash
# Full fine-tuning of RDT-1B on LIBERO. Edit the variables, then: bash finetune_sft.sh [extra main_sft.py flags]
# Single GPU, all GPUs of this node (default), or several nodes (HOSTFILE) through DeepSpeed.
# On a machine without a GPU it runs the same entrypoint on the CPU (use CONFIG=configs/tiny.yaml there).
set -euo pipefail
cd "$(dirname "$0")"

CONFIG=${CONFIG:-configs/base.yaml}
PRETRAINED=${PRETRAINED-robotics-diffusion-transformer/rdt-1b}   # hub id, local dir, DeepSpeed .pt, or "" (random)
TEXT_ENCODER=${TEXT_ENCODER:-}                 # default: model.text_encoder of CONFIG (google/t5-v1_1-xxl)
VISION_ENCODER=${VISION_ENCODER:-}             # default: model.vision_encoder of CONFIG (google/siglip-so400m-patch14-384)
OUTPUT_DIR=${OUTPUT_DIR:-checkpoints/rdt-finetune-1b-$(date +%Y%m%d_%H%M%S)}
RESUME_CHECKPOINT_SRC=${RESUME_CHECKPOINT_SRC:-}  # "latest" (in OUTPUT_DIR) or a checkpoint-N folder
DEEPSPEED_CONFIG=${DEEPSPEED_CONFIG:-configs/zero2.json}
HOSTFILE=${HOSTFILE:-}                         # multi-node: a DeepSpeed hostfile ("host slots=8" per line)
NUM_GPUS=${NUM_GPUS:-}                         # default: all visible GPUs
PRECOMP_LANG_EMBED=${PRECOMP_LANG_EMBED:-}     # e.g. data/datasets/lang_embeddings (skips T5-XXL in training)
export WANDB_PROJECT=${WANDB_PROJECT:-rdt_libero_sft}

# The recipe (batch, effective batch 256 by accumulation, LR, warm-up, schedule, periods, workers,
# augmentation, precision, logging) lives in CONFIG's `train:` and `dataset:` sections: this launcher
# chooses the preset and the hardware only, so `deepspeed main_sft.py --deepspeed configs/zero2.json
# --config_path CONFIG` trains with the same numbers. Change a knob with a flag after the command
# (bash finetune_sft.sh --learning_rate 5e-5) or --set train.learning_rate=5e-5.
TRAIN_ARGS=(
  --config_path "$CONFIG"
  --output_dir "$OUTPUT_DIR"
)
[ -n "$PRETRAINED" ] && TRAIN_ARGS+=(--pretrained_model_name_or_path "$PRETRAINED")
[ -n "$TEXT_ENCODER" ] && TRAIN_ARGS+=(--pretrained_text_encoder_name_or_path "$TEXT_ENCODER")
[ -n "$VISION_ENCODER" ] && TRAIN_ARGS+=(--pretrained_vision_encoder_name_or_path "$VISION_ENCODER")
[ -n "$RESUME_CHECKPOINT_SRC" ] && TRAIN_ARGS+=(--resume_from_checkpoint "$RESUME_CHECKPOINT_SRC")
[ -n "$PRECOMP_LANG_EMBED" ] && TRAIN_ARGS+=(--precomp_lang_embed "$PRECOMP_LANG_EMBED")

source scripts/launch_common.sh
launch_training "${TRAIN_ARGS[@]}" "$@"
