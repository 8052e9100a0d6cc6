#!/usr/bin/env bash
# LoRA fine-tuning of RDT-1B on LIBERO: only the adapter (+ the state adaptor) is trained and saved
# (MBs per checkpoint). Merge for deployment with: python -m scripts.merge_lora CKPT --out DIR
# Same variables as finetune_sft.sh; the preset is configs/lora.yaml (CONFIG=... for another one with
# train.use_lora: true). LoRA knobs as flags (--lora_rank 16) or in the config.
set -euo pipefail
cd "$(dirname "$0")"
export OUTPUT_DIR=${OUTPUT_DIR:-checkpoints/rdt-lora-1b-$(date +%Y%m%d_%H%M%S)}
export CONFIG=${CONFIG:-configs/lora.yaml}
exec bash finetune_sft.sh "$@"
