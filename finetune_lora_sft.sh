#!/usr/bin/env bash
# LoRA fine-tuning of RDT-1B on LIBERO: only the adapter (+ the state adaptor) is trained and saved
# (MBs per checkpoint). Merge for deployment with: python -m scripts.merge_lora CKPT --out DIR
# Same variables as finetune_sft.sh, plus LORA_RANK / LORA_ALPHA / LORA_DROPOUT.
set -euo pipefail
cd "$(dirname "$0")"
export OUTPUT_DIR=${OUTPUT_DIR:-checkpoints/rdt-lora-1b-$(date +%Y%m%d_%H%M%S)}
export LR=${LR:-1e-4}
exec bash finetune_sft.sh --use_lora --lora_rank "${LORA_RANK:-32}" --lora_alpha "${LORA_ALPHA:-64}" \
  --lora_dropout "${LORA_DROPOUT:-0.05}" "$@"
