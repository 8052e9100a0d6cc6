"""Every entry point runs both as a file and as a module (`python scripts/x.py -h` and
`python -m scripts.x -h`), from any working directory."""
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p.stem for p in (REPO / "scripts").glob("*.py") if not p.name.startswith("_"))
TOP = ["main_sft", "download_libero"]


def run_help(args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args, "-h"], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_runs_as_file_and_as_module(name, tmp_path):
    as_file = run_help([str(REPO / "scripts" / f"{name}.py")], cwd=tmp_path)
    assert as_file.returncode == 0 and "usage" in as_file.stdout, as_file.stderr[-2000:]
    as_module = run_help(["-m", f"scripts.{name}"], cwd=REPO)
    assert as_module.returncode == 0 and as_module.stdout == as_file.stdout, as_module.stderr[-2000:]


@pytest.mark.parametrize("name", TOP)
def test_top_level_entrypoints(name, tmp_path):
    proc = run_help([str(REPO / f"{name}.py")], cwd=tmp_path)
    assert proc.returncode == 0 and "usage" in proc.stdout, proc.stderr[-2000:]


def test_eval_cli_runs_as_file():
    proc = run_help([str(REPO / "libero_eval" / "eval_rdt_libero.py")], cwd=REPO)
    assert proc.returncode == 0 and "usage" in proc.stdout, proc.stderr[-2000:]
