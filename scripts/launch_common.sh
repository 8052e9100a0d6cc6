# Shared by the launchers: pick the Python and the launcher (DeepSpeed on GPUs, plain on CPU).
PYTHON=${PYTHON:-}
if [ -z "$PYTHON" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python; fi
fi
export TOKENIZERS_PARALLELISM=false

gpu_count() {
  "$PYTHON" -c "import torch; print(torch.cuda.device_count())" 2>/dev/null || echo 0
}

launch_training() {
  local n
  n=$(gpu_count)
  if [ "$n" -gt 0 ]; then
    local ds=(deepspeed)
    [ -n "${HOSTFILE:-}" ] && ds+=(--hostfile "$HOSTFILE")
    [ -n "${NUM_GPUS:-}" ] && ds+=(--num_gpus "$NUM_GPUS")
    echo "[launch] deepspeed on $n visible GPU(s): ${ds[*]} main_sft.py --deepspeed $DEEPSPEED_CONFIG $*"
    "${ds[@]}" main_sft.py --deepspeed "$DEEPSPEED_CONFIG" "$@"
  else
    echo "[launch] no GPU found: running main_sft.py on the CPU (mixed precision off)"
    "$PYTHON" main_sft.py "$@" --mixed_precision no
  fi
}
