#!/usr/bin/env bash
# Evaluate one checkpoint on ALL tasks of a LIBERO suite. Every task runs in its own process (a
# crashed simulator costs one task, not the suite), PARALLEL_TASKS at a time, spread round-robin
# over the visible GPUs (CUDA_VISIBLE_DEVICES) when there are several. All tasks append to one
# outs/metrics/$RUN_NAME/trials.csv; one summary.csv (per task + suite mean, intervals, seeds) and
# report.{md,png} are written at the end.
#   bash eval_with_video_subEnv.sh [extra libero_eval.eval_rdt_libero flags]
# Rerunning with the same RUN_NAME resumes every task where it stopped.
set -uo pipefail
cd "$(dirname "$0")"

DATASET_NAME=${DATASET_NAME:-libero_10} # libero_spatial | libero_object | libero_goal | libero_10 | libero_90 | a LIBERO-PRO suite
CHECKPOINT=${CHECKPOINT:-./checkpoints/rdt-finetune-1b-xxx/checkpoint-30000}
# The protocol comes from the eval section of the checkpoint's config (configs/base.yaml: 50 trials,
# exec_horizon 16, one simulator process, videos of failures, seed 7); set these only to change it:
NUM_TRAJ=${NUM_TRAJ:-}                  # trials per task
EXEC_HORIZON=${EXEC_HORIZON:-}
NUM_ENVS=${NUM_ENVS:-}                  # simulator processes per task process
VIDEO=${VIDEO:-}                        # all | failures | none
SEEDS=${SEEDS:-}                        # evaluation seeds, e.g. "0 1 2" (the published protocol: 3 x 50 trials)
PARALLEL_TASKS=${PARALLEL_TASKS:-}      # task processes at a time (default: number of GPUs, 1 on CPU)
TASK_IDS=${TASK_IDS:-}                  # default: every task of the suite, e.g. "0 3 7" for a subset
RUN_NAME=${RUN_NAME:-}                   # default: <checkpoint>_<suite>_h<exec_horizon>_s<seeds>[...] (settings in the name)
OUT_ROOT=${OUT_ROOT:-outs}              # metrics/ and eval_videos/ go below this
export MUJOCO_GL=${MUJOCO_GL:-egl}

source scripts/launch_common.sh        # PYTHON

# Shell-side settings are checked here, before anything starts (the Python side checks its flags).
if [ -n "$PARALLEL_TASKS" ] && ! [[ "$PARALLEL_TASKS" =~ ^[1-9][0-9]*$ ]]; then
  echo "error: PARALLEL_TASKS=$PARALLEL_TASKS: expected a whole number >= 1 of task processes at a time" >&2; exit 2
fi
for t in $TASK_IDS; do
  [[ "$t" =~ ^[0-9]+$ ]] || { echo "error: TASK_IDS=\"$TASK_IDS\": expected task ids (whole numbers >= 0), got '$t'" >&2; exit 2; }
done

# Visible GPUs: CUDA_VISIBLE_DEVICES if set, else what nvidia-smi lists, else none (CPU).
GPUS=()
if [ -n "${CUDA_VISIBLE_DEVICES:-}" ]; then
  IFS=',' read -r -a GPUS <<< "$CUDA_VISIBLE_DEVICES"
elif command -v nvidia-smi >/dev/null 2>&1; then
  mapfile -t GPUS < <(nvidia-smi --query-gpu=index --format=csv,noheader 2>/dev/null)
fi
if [ -z "$PARALLEL_TASKS" ]; then PARALLEL_TASKS=$(( ${#GPUS[@]} > 0 ? ${#GPUS[@]} : 1 )); fi

if [ -z "$TASK_IDS" ]; then
  N_TASKS=$("$PYTHON" -c "import sys; from libero_eval import env; print(env.get_suite(sys.argv[1]).n_tasks)" \
            "$DATASET_NAME" 2>/dev/null | tail -n 1) || { echo "error: DATASET_NAME=$DATASET_NAME: unknown suite (see configs/suites.py)" >&2; exit 2; }
  TASK_IDS=$(seq 0 $(( N_TASKS - 1 )))
fi

# Resolve a run folder to its newest checkpoint ONCE (training may still be writing new ones) and the
# run name from the settings; every task process then gets the same concrete checkpoint.
PROTOCOL=(${NUM_TRAJ:+--num_trials "$NUM_TRAJ"} ${EXEC_HORIZON:+--exec_horizon "$EXEC_HORIZON"}
          ${NUM_ENVS:+--num_envs "$NUM_ENVS"} ${VIDEO:+--video "$VIDEO"})
# shellcheck disable=SC2206  # SEEDS is a list
[ -n "$SEEDS" ] && PROTOCOL+=(--seeds $SEEDS)
# (its own "error: ..." line explains a failure: pass its status on without another line)
resolved=$("$PYTHON" -m libero_eval.eval_rdt_libero --resolve_only --checkpoint "$CHECKPOINT" \
           --suite "$DATASET_NAME" "${PROTOCOL[@]}" ${RUN_NAME:+--run_name "$RUN_NAME"} "$@" \
           | tail -n 1) || exit $?
IFS=$'\t' read -r CHECKPOINT RUN_NAME <<< "$resolved"
echo "[eval] checkpoint $CHECKPOINT, run $RUN_NAME"

LOG_DIR=$OUT_ROOT/metrics/$RUN_NAME/logs
mkdir -p "$LOG_DIR"
echo "[eval] $DATASET_NAME tasks: $(echo $TASK_IDS | tr '\n' ' ')| $PARALLEL_TASKS at a time | GPUs: ${GPUS[*]:-none} | run $RUN_NAME"

declare -A PIDS=()
failed=()
reap() {  # wait until one task process ends (portable: no `wait -n -p`, which needs bash >= 5.1)
  local pid rc
  [ "${#PIDS[@]}" -gt 0 ] || return 1  # nothing running: nothing to wait for (never spin)
  while true; do
    for pid in "${!PIDS[@]}"; do
      if ! kill -0 "$pid" 2>/dev/null; then
        wait "$pid"; rc=$?
        local task=${PIDS[$pid]}
        unset "PIDS[$pid]"
        if [ "$rc" -ne 0 ]; then failed+=("$task"); echo "[eval] task $task exited with $rc (see $LOG_DIR/task$task.log)"; fi
        return 0
      fi
    done
    sleep 1
  done
}

k=0
for task in $TASK_IDS; do
  while [ "${#PIDS[@]}" -ge "$PARALLEL_TASKS" ]; do reap || break; done
  gpu_env=()
  if [ "${#GPUS[@]}" -gt 0 ]; then gpu_env=(env CUDA_VISIBLE_DEVICES="${GPUS[$(( k % ${#GPUS[@]} ))]}"); fi
  echo "[eval] task $task${gpu_env[*]:+ on ${gpu_env[1]}} -> $LOG_DIR/task$task.log"
  "${gpu_env[@]}" "$PYTHON" -m libero_eval.eval_rdt_libero \
    --checkpoint "$CHECKPOINT" --suite "$DATASET_NAME" --task_ids "$task" "${PROTOCOL[@]}" \
    --run_name "$RUN_NAME" --out_root "$OUT_ROOT" --no_progress "$@" > "$LOG_DIR/task$task.log" 2>&1 &
  PIDS[$!]=$task
  k=$(( k + 1 ))
done
while [ "${#PIDS[@]}" -gt 0 ]; do reap || break; done

"$PYTHON" -m libero_eval.eval_rdt_libero --summarize_only --run_name "$RUN_NAME" --out_root "$OUT_ROOT"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "[eval] task process(es) failed: ${failed[*]} -- rerun the same command to resume them" >&2
  exit 1
fi
