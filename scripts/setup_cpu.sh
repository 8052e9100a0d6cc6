#!/usr/bin/env bash
# Create (or reuse) the CPU virtualenv at .venv/ and install everything needed to run the tiny
# pipeline and the tests on a machine without a GPU. Idempotent: a second run only checks.
#
# Installs requirements-cpu.lock (every version pinned, torch 2.13.0 CPU build; `make lock` regenerates
# it from pyproject.toml), so two fresh machines get the same environment, the one CI tested.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=.venv
STAMP=$VENV/.setup-cpu-done
LOCK=requirements-cpu.lock

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

hash_now=$(cat "$LOCK" pyproject.toml "$0" | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$hash_now" ]; then
  echo "[setup] $VENV is up to date"
  exit 0
fi

echo "[setup] installing the locked CPU environment ($LOCK) into $VENV (first time: a few minutes)"
"$VENV/bin/python" -m pip install -q --upgrade pip
# Exactly the versions CI tested (torch is the CPU build), then this repo itself (editable: the
# packages configs/, data/, models/, ... import from anywhere, and `python scripts/x.py` works).
"$VENV/bin/python" -m pip install -q -r "$LOCK"
"$VENV/bin/python" -m pip install -q --no-deps -e .
"$VENV/bin/python" -m pip check
# robosuite warns at every import until a private macro file exists: write its default one once.
"$VENV/bin/python" - <<'PYEOF'
import importlib.util, pathlib, shutil
spec = importlib.util.find_spec("robosuite")
if spec is not None:
    root = pathlib.Path(spec.origin).parent
    if not (root / "macros_private.py").exists():
        shutil.copyfile(root / "macros.py", root / "macros_private.py")
PYEOF
echo "$hash_now" > "$STAMP"
echo "[setup] done"
