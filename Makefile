# Newcomer entry points (both create/reuse the virtualenv at .venv/):
#   make demo   - install, then run the whole pipeline on the embedded tiny default (CPU, no downloads)
#   make test   - install, then run the full test suite (what CI runs)
SHELL := /bin/bash
export MUJOCO_GL ?= egl
export PYOPENGL_PLATFORM ?= egl
PY := .venv/bin/python

.PHONY: setup test test-fast demo clean-demo lock

setup:
	bash scripts/setup_cpu.sh

test: setup
	$(PY) -m pytest -q --timeout 1800

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

demo: setup
	bash scripts/quickstart.sh

lock:
	bash scripts/lock_cpu.sh

clean-demo:
	rm -rf outs/demo checkpoints/demo data/datasets/demo
