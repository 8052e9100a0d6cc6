#!/usr/bin/env bash
# Evaluate one checkpoint on one LIBERO task in the simulator, with videos and a per-trial CSV.
# Edit the variables (or set them in the environment), then:
#   bash eval_with_video.sh [extra libero_eval.eval_rdt_libero flags, e.g. --max_steps 40 --ema]
# Outputs: outs/eval_videos/$RUN_NAME/*.mp4, outs/metrics/$RUN_NAME/{trials,summary}.csv, report.{md,png}.
# Rerunning with the same settings resumes: trials already in trials.csv are skipped (other settings
# get their own run; a RUN_NAME evaluated with other settings is refused).
set -euo pipefail
cd "$(dirname "$0")"

TASK_ID=${TASK_ID:-1}                   # task id within the suite (0..9; 0..89 for libero_90)
DATASET_NAME=${DATASET_NAME:-libero_10} # one suite, or several: "libero_goal libero_10"
CHECKPOINT=${CHECKPOINT:-./checkpoints/rdt-finetune-1b-xxx/checkpoint-30000}  # checkpoint-N or a run folder (newest)
# The protocol comes from the eval section of the checkpoint's config (configs/base.yaml: 50 trials,
# exec_horizon 16, 1 simulator process, videos of failures); set these only to change it:
NUM_TRAJ=${NUM_TRAJ:-}                  # trials per task (3 for a quick test)
EXEC_HORIZON=${EXEC_HORIZON:-}          # actions executed per predicted chunk of 64, then re-plan
NUM_ENVS=${NUM_ENVS:-}                  # parallel simulator processes (batched inference)
VIDEO=${VIDEO:-}                        # all | failures | none
SEEDS=${SEEDS:-}                        # evaluation seeds, e.g. "0 1 2" (the published protocol)
RUN_NAME=${RUN_NAME:-}                   # default: <checkpoint>_<suites>_h<exec_horizon>_s<seeds>[...] (settings in the name)
OUT_ROOT=${OUT_ROOT:-outs}              # metrics/ and eval_videos/ go below this
export MUJOCO_GL=${MUJOCO_GL:-egl}

source scripts/launch_common.sh        # PYTHON: .venv/bin/python when present, else python

set -x
# shellcheck disable=SC2086  # DATASET_NAME and SEEDS are lists
"$PYTHON" -m libero_eval.eval_rdt_libero \
  --checkpoint "$CHECKPOINT" \
  --suites $DATASET_NAME \
  --task_ids "$TASK_ID" \
  ${NUM_TRAJ:+--num_trials "$NUM_TRAJ"} \
  ${EXEC_HORIZON:+--exec_horizon "$EXEC_HORIZON"} \
  ${NUM_ENVS:+--num_envs "$NUM_ENVS"} \
  ${VIDEO:+--video "$VIDEO"} \
  ${SEEDS:+--seeds $SEEDS} \
  ${RUN_NAME:+--run_name "$RUN_NAME"} \
  --out_root "$OUT_ROOT" \
  "$@"
