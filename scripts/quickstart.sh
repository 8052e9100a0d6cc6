#!/usr/bin/env bash
# The whole pipeline on the embedded tiny default, on a CPU, with no downloads (`make demo`):
#   tiny encoders -> demo data rolled out in the LIBERO simulator -> language embeddings -> statistics
#   -> tiny RDT fine-tuned through finetune_sft.sh (checkpoint, then a resumed second leg)
#   -> evaluation in the simulator through eval_with_video.sh (CSV + mp4).
# Every stage reuses what an earlier run produced; `make clean-demo` starts over.
set -euo pipefail
cd "$(dirname "$0")/.."
export MUJOCO_GL=${MUJOCO_GL:-egl} PYOPENGL_PLATFORM=${PYOPENGL_PLATFORM:-egl} TOKENIZERS_PARALLELISM=false
PY=.venv/bin/python
[ -x "$PY" ] || { echo "run 'make demo' (or bash scripts/setup_cpu.sh) first"; exit 1; }

SUITE=libero_goal
TASK_ID=${TASK_ID:-1}                 # put the bowl on the stove
EPISODES=${EPISODES:-6}
STEPS=${STEPS:-400}                   # fine-tuning steps (two legs of STEPS/2, the second resumed)
RUN=${RUN:-demo}
OUT=checkpoints/$RUN
LANG_DIR=data/datasets/lang_embeddings_tiny
start=$(date +%s)
stage() { printf '\n\033[1m[%4ss] %s\033[0m\n' "$(( $(date +%s) - start ))" "$*"; }

stage "1/6 tiny SigLIP + T5 encoders (random, saved with save_pretrained)"
$PY -m scripts.make_tiny_encoders --out checkpoints/tiny_encoders

stage "2/6 demo data: $EPISODES scripted episodes of $SUITE task $TASK_ID rolled out in the LIBERO simulator"
$PY -m scripts.make_demo_dataset --suite $SUITE --tasks "$TASK_ID" --episodes "$EPISODES" \
    --out data/datasets/demo_libero --no_overwrite
$PY -m scripts.verify_dataset data/datasets/demo_libero/$SUITE

stage "3/6 language embeddings (tiny T5, once per instruction)"
$PY -m scripts.preprocess_language_embeddings --config configs/tiny.yaml --out $LANG_DIR

stage "4/6 dataset statistics -> configs/dataset_stat.json"
$PY -m scripts.compute_dataset_stats --config configs/tiny.yaml --out configs/dataset_stat.json

stage "5/6 fine-tune the tiny RDT: $((STEPS / 2)) steps, then resume from the checkpoint to $STEPS"
export CONFIG=configs/tiny.yaml PRETRAINED="" OUTPUT_DIR=$OUT PRECOMP_LANG_EMBED=$LANG_DIR
DEMO_RECIPE=(--train_batch_size 16 --checkpointing_period $((STEPS / 2)) --sample_period $((STEPS / 2))
             --sample_batch_size 16 --lr_scheduler constant_with_warmup --lr_warmup_steps 20 --learning_rate 1e-3
             --dataloader_num_workers 1 --image_aug --state_noise_snr 40)
bash finetune_sft.sh "${DEMO_RECIPE[@]}" --max_train_steps $((STEPS / 2))
RESUME_CHECKPOINT_SRC=latest bash finetune_sft.sh "${DEMO_RECIPE[@]}" --max_train_steps "$STEPS"
CKPT=$OUT/checkpoint-$STEPS

stage "6/6 evaluate $CKPT in the simulator ($SUITE task $TASK_ID, 2 trials, re-plan every 16 actions)"
TASK_ID=$TASK_ID NUM_TRAJ=2 DATASET_NAME=$SUITE CHECKPOINT=$CKPT EXEC_HORIZON=16 NUM_ENVS=2 RUN_NAME=$RUN \
  VIDEO=all bash eval_with_video.sh

stage "done in $(( $(date +%s) - start )) s"
echo "checkpoint : $CKPT"
echo "training   : $OUT/metrics.jsonl, $OUT/training.log, outs/videos/$RUN/ (sampled vs ground-truth chunks)"
echo "evaluation : outs/metrics/$RUN/trials.csv, outs/metrics/$RUN/summary.csv"
echo "videos     : $(ls outs/eval_videos/$RUN/*.mp4 2>/dev/null | tr '\n' ' ')"
