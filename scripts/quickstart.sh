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
RUN=${RUN:-demo}
OUT=checkpoints/$RUN
LANG_DIR=data/datasets/lang_embeddings_tiny
export CONFIG=configs/demo.yaml       # the demo's recipe (tiny model, 400 steps, checkpoint at 200)
STEPS=$($PY main_sft.py --config_path $CONFIG --print_config | $PY -c "import json,sys; print(json.load(sys.stdin)['train']['max_train_steps'])")
HALF=$($PY main_sft.py --config_path $CONFIG --print_config | $PY -c "import json,sys; print(json.load(sys.stdin)['train']['checkpointing_period'])")
start=$(date +%s)
stage() { printf '\n\033[1m[%4ss] %s\033[0m\n' "$(( $(date +%s) - start ))" "$*"; }

stage "1/6 tiny SigLIP + T5 encoders (random, saved with save_pretrained)"
$PY -m scripts.make_tiny_encoders --out checkpoints/tiny_encoders

stage "2/6 demo data: $EPISODES scripted episodes of $SUITE task $TASK_ID rolled out in the LIBERO simulator"
$PY -m scripts.make_demo_dataset --suite $SUITE --tasks "$TASK_ID" --episodes "$EPISODES" \
    --out data/datasets/demo_libero --no_overwrite
$PY -m scripts.verify_dataset data/datasets/demo_libero/$SUITE

stage "3/6 language embeddings (tiny T5, once per instruction)"
$PY -m scripts.preprocess_language_embeddings --config $CONFIG --out $LANG_DIR

stage "4/6 dataset statistics -> configs/dataset_stat.json"
$PY -m scripts.compute_dataset_stats --config $CONFIG --out configs/dataset_stat.json

stage "5/6 fine-tune the tiny RDT ($CONFIG): $HALF steps, then resume from that checkpoint to $STEPS"
export PRETRAINED="" OUTPUT_DIR=$OUT PRECOMP_LANG_EMBED=$LANG_DIR
bash finetune_sft.sh --max_train_steps "$HALF"
RESUME_CHECKPOINT_SRC=latest bash finetune_sft.sh
CKPT=$OUT/checkpoint-$STEPS

stage "6/6 evaluate $CKPT in the simulator ($SUITE task $TASK_ID; the protocol of $CONFIG's eval section)"
TASK_ID=$TASK_ID DATASET_NAME=$SUITE CHECKPOINT=$CKPT RUN_NAME=$RUN bash eval_with_video.sh

stage "done in $(( $(date +%s) - start )) s"
echo "checkpoint : $CKPT"
echo "training   : $OUT/metrics.jsonl, $OUT/training.log, outs/videos/$RUN/ (sampled vs ground-truth chunks)"
echo "evaluation : outs/metrics/$RUN/trials.csv, summary.csv, report.md, report.png"
echo "videos     : $(ls outs/eval_videos/$RUN/*.mp4 2>/dev/null | tr '\n' ' ')"
