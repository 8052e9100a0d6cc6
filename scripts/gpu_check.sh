#!/usr/bin/env bash
# The prepared GPU-node check (scripts/gpu_check.py): ~8 minutes on one H100/H200-class GPU, no downloads.
#   bash scripts/gpu_check.sh            # GPU: prints a table, writes outs/gpu_check/<time>.json
#   bash scripts/gpu_check.sh --dry      # CPU, tiny config: the same code paths (run in CI)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python
export TOKENIZERS_PARALLELISM=false
exec "$PY" -m scripts.gpu_check "$@"
