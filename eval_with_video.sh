#!/usr/bin/env bash
# Evaluate one checkpoint on one LIBERO task in the simulator, with videos and a per-trial CSV.
# Edit the variables (or set them in the environment), then:
#   bash eval_with_video.sh [extra libero_eval.eval_rdt_libero flags, e.g. --max_steps 40 --ema]
# Outputs: outs/eval_videos/$RUN_NAME/*.mp4, outs/metrics/$RUN_NAME/{trials,summary}.csv.
# Rerunning with the same settings resumes: trials already in trials.csv are skipped (other settings
# get their own run; a RUN_NAME evaluated with other settings is refused).
set -euo pipefail
cd "$(dirname "$0")"

TASK_ID=${TASK_ID:-1}                   # task id within the suite (0..9; 0..89 for libero_90)
NUM_TRAJ=${NUM_TRAJ:-50}                # trials (the published protocol: all 50 init states; 3 for a quick test)
DATASET_NAME=${DATASET_NAME:-libero_10} # libero_spatial | libero_object | libero_goal | libero_10 | libero_90
CHECKPOINT=${CHECKPOINT:-./checkpoints/rdt-finetune-1b-xxx/checkpoint-30000}  # checkpoint-N or a run folder (newest)
EXEC_HORIZON=${EXEC_HORIZON:-16}        # actions executed per predicted chunk of 64, then re-plan
NUM_ENVS=${NUM_ENVS:-1}                 # parallel simulator processes (batched inference)
VIDEO=${VIDEO:-failures}                # all | failures | none
RUN_NAME=${RUN_NAME:-}                   # default: <checkpoint>_<suite>_h<exec_horizon>_s<seed>[...] (settings in the name)
OUT_ROOT=${OUT_ROOT:-outs}              # metrics/ and eval_videos/ go below this
export MUJOCO_GL=${MUJOCO_GL:-egl}

source scripts/launch_common.sh        # PYTHON: .venv/bin/python when present, else python

set -x
"$PYTHON" -m libero_eval.eval_rdt_libero \
  --checkpoint "$CHECKPOINT" \
  --suite "$DATASET_NAME" \
  --task_ids "$TASK_ID" \
  --num_trials "$NUM_TRAJ" \
  --exec_horizon "$EXEC_HORIZON" \
  --num_envs "$NUM_ENVS" \
  --video "$VIDEO" \
  ${RUN_NAME:+--run_name "$RUN_NAME"} \
  --out_root "$OUT_ROOT" \
  "$@"
