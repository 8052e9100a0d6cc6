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
REPORT_TO=${REPORT_TO:-wandb}

# Recipe (user's notes): effective batch 256 = 32/GPU x 8 GPUs (or accumulation), long warm-up,
# checkpoints every 2000 steps, state noise 40 dB, image augmentation.
TRAIN_ARGS=(
  --config_path "$CONFIG"
  --output_dir "$OUTPUT_DIR"
  --train_batch_size "${TRAIN_BATCH_SIZE:-32}"
  --gradient_accumulation_steps "${GRAD_ACCUM:-1}"
  --sample_batch_size "${SAMPLE_BATCH_SIZE:-64}"
  --num_sample_batches 2
  --max_train_steps "${MAX_STEPS:-200000}"
  --checkpointing_period "${CKPT_PERIOD:-2000}"
  --checkpoints_total_limit "${CKPT_LIMIT:-40}"
  --sample_period "${SAMPLE_PERIOD:-1000}"
  --lr_scheduler constant_with_warmup
  --lr_warmup_steps "${WARMUP:-5000}"
  --learning_rate "${LR:-1e-4}"
  --mixed_precision "${MIXED_PRECISION:-bf16}"
  --dataloader_num_workers "${NUM_WORKERS:-8}"
  --image_aug
  --state_noise_snr 40
  --load_from_hdf5
  --dataset_type finetune
  --report_to "$REPORT_TO"
)
[ -n "$PRETRAINED" ] && TRAIN_ARGS+=(--pretrained_model_name_or_path "$PRETRAINED")
[ -n "$TEXT_ENCODER" ] && TRAIN_ARGS+=(--pretrained_text_encoder_name_or_path "$TEXT_ENCODER")
[ -n "$VISION_ENCODER" ] && TRAIN_ARGS+=(--pretrained_vision_encoder_name_or_path "$VISION_ENCODER")
[ -n "$RESUME_CHECKPOINT_SRC" ] && TRAIN_ARGS+=(--resume_from_checkpoint "$RESUME_CHECKPOINT_SRC")
[ -n "$PRECOMP_LANG_EMBED" ] && TRAIN_ARGS+=(--precomp_lang_embed "$PRECOMP_LANG_EMBED")

source scripts/launch_common.sh
launch_training "${TRAIN_ARGS[@]}" "$@"
