#!/usr/bin/env bash
# A throwaway venv for the official RDT code at its own pins, beside this repo's .venv:
#   bash scripts/setup_official_venv.sh [OFFICIAL_CHECKOUT]      # -> .venv-official/, official-rdt/
# OFFICIAL_CHECKOUT: a clone of https://github.com/thu-ml/RoboticsDiffusionTransformer (default: cloned
# into official-rdt/ at the commit the parity fixtures were made with). The venv holds timm 1.0.3 (the
# official requirements' pin, whose RmsNorm the released weights were trained with) and falls back to
# .venv's packages for the rest, so both runners share one torch. PyPI has no CPU build of
# torchvision, which timm 1.0.3 imports at import time for its data pipeline and FrozenBatchNorm2d
# (neither is used by RDT): the venv gets an import-only stand-in that raises if anything calls it.
set -euo pipefail
cd "$(dirname "$0")/.."
COMMIT=deb71d8
CHECKOUT=${1:-official-rdt}
[ -x .venv/bin/python ] || { echo "error: .venv missing: run 'make setup' first" >&2; exit 2; }
if [ ! -f "$CHECKOUT/models/rdt_runner.py" ]; then
  [ -e "$CHECKOUT" ] && { echo "error: $CHECKOUT has no models/rdt_runner.py (not an RDT checkout)" >&2; exit 2; }
  git clone -q https://github.com/thu-ml/RoboticsDiffusionTransformer "$CHECKOUT"
  git -C "$CHECKOUT" checkout -q "$COMMIT"
fi
PYV=$(.venv/bin/python -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
python3 -m venv .venv-official
SITE=.venv-official/lib/python$PYV/site-packages
.venv-official/bin/pip install -q --no-deps timm==1.0.3
# .venv's packages after the venv's own (timm 1.0.3 wins)
echo "$PWD/.venv/lib/python$PYV/site-packages" > "$SITE/zz_rdt_venv.pth"
TV=$SITE/torchvision
mkdir -p "$TV/ops" "$TV/transforms" "$TV/datasets"
cat > "$TV/__init__.py" <<'PY'
"""Import-only stand-in for torchvision (scripts/setup_official_venv.sh): timm 1.0.3 imports it at
import time; RDT calls none of it."""
__version__ = "0.0+import-stub"
PY
: > "$TV/ops/__init__.py"
cat > "$TV/ops/misc.py" <<'PY'
import torch


class FrozenBatchNorm2d(torch.nn.Module):
    def __init__(self, *args, **kwargs):
        raise NotImplementedError("torchvision import stub (setup_official_venv.sh): FrozenBatchNorm2d")
PY
cat > "$TV/transforms/__init__.py" <<'PY'
from . import functional


def __getattr__(name):
    raise AttributeError(f"torchvision import stub (setup_official_venv.sh): transforms.{name}")
PY
cat > "$TV/transforms/functional.py" <<'PY'
import enum


class InterpolationMode(enum.Enum):
    NEAREST = "nearest"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"
    BOX = "box"
    HAMMING = "hamming"
    LANCZOS = "lanczos"
PY
echo "CIFAR100 = CIFAR10 = MNIST = KMNIST = FashionMNIST = ImageFolder = None" > "$TV/datasets/__init__.py"
.venv-official/bin/python -c "import timm; assert timm.__version__ == '1.0.3'; from timm.models.vision_transformer import Attention, Mlp, RmsNorm"
echo "official venv ready: .venv-official/bin/python -m scripts.bench_official --official_repo $CHECKOUT"
