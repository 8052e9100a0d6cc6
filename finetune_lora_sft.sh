#!/usr/bin/env bash
# LoRA fine-tuning of RDT-1B on LIBERO: only the adapter (+ the state adaptor) is trained and saved
# (MBs per checkpoint). Merge for deployment with: python -m scripts.merge_lora CKPT --out DIR
# Same variables as finetune_sft.sh; LoRA knobs as flags (--lora_rank 16) or in the config.
set -euo pipefail
cd "$(dirname "$0")"
export OUTPUT_DIR=${OUTPUT_DIR:-checkpoints/rdt-lora-1b-$(date +%Y%m%d_%H%M%S)}
# Rank, alpha and dropout come from the config's train section (lora_rank / lora_alpha / lora_dropout).
exec bash finetune_sft.sh --use_lora "$@"
