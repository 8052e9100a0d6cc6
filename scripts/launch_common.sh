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
    # The resolved config says which model this is; a bad preset or flag ends here with its one line.
    local hidden=0 arg
    for arg in "$@"; do case "$arg" in --print_config) hidden=-1 ;; esac; done  # only prints: no training
    [ "$hidden" -lt 0 ] || hidden=$("$PYTHON" main_sft.py "$@" --print_config | "$PYTHON" -c \
             "import json, sys; print(json.load(sys.stdin)['model']['rdt']['hidden_size'])") || exit $?
    if [ "$hidden" -ge 1024 ]; then
      echo "error: no GPU found, and ${CONFIG:-the config} is the RDT-1B recipe (hidden size $hidden: 1.2B parameters, SigLIP so400m and T5-XXL from the hub): it does not train on a CPU. On this machine use CONFIG=configs/tiny.yaml (after \`python -m scripts.make_tiny_encoders\`) or configs/demo.yaml (\`make demo\`)" >&2
      exit 2
    fi
    echo "[launch] no GPU found: running main_sft.py on the CPU (mixed precision off)"
    "$PYTHON" main_sft.py "$@" --mixed_precision no
  fi
}
