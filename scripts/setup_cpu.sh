#!/usr/bin/env bash
# Create (or reuse) the CPU virtualenv at .venv/ and install everything needed to run the tiny
# pipeline and the tests on a machine without a GPU. Idempotent: a second run only checks.
#
# Why not `pip install -r requirements.txt`: a plain `torch` resolves to a multi-GB CUDA build; the
# CPU path pins torch 2.13.0 (CPU wheel) and never installs timm/torchvision (see README).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=.venv
STAMP=$VENV/.setup-cpu-done
REQ=requirements-cpu.txt

# Offscreen rendering libraries for the LIBERO simulator (MuJoCo via EGL / OSMesa).
need_gl=0
for lib in libEGL.so.1 libGL.so.1 libOSMesa.so.8; do
  ldconfig -p 2>/dev/null | grep -q "$lib" || need_gl=1
done
if [ "$need_gl" = 1 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "[setup] installing offscreen GL libraries (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libegl1 libgl1 libosmesa6 libglx-mesa0 libegl-mesa0 libgles2 ffmpeg >/dev/null
  else
    echo "[setup] WARNING: EGL/OSMesa libraries missing and cannot apt-get install them; simulator rendering will fail" >&2
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV"
  "$PY" -m venv "$VENV"
fi

hash_now=$(cat "$REQ" "$0" | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$hash_now" ]; then
  echo "[setup] $VENV is up to date"
  exit 0
fi

echo "[setup] installing CPU requirements into $VENV (first time: a few minutes)"
"$VENV/bin/python" -m pip install -q --upgrade pip
# The CPU torch wheel first, then everything else constrained to it so nothing pulls a CUDA build.
"$VENV/bin/python" -m pip install -q "torch==2.13.0"
echo "torch==2.13.0" > "$VENV/constraints.txt"
"$VENV/bin/python" -m pip install -q -c "$VENV/constraints.txt" -r "$REQ"
"$VENV/bin/python" -m pip check
echo "$hash_now" > "$STAMP"
echo "[setup] done"
