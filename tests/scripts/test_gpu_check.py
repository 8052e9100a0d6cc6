"""scripts/gpu_check.sh --dry: the GPU-node check's every part runs on the CPU with the tiny config,
so the script cannot rot between the rare GPU sessions."""
import json
import subprocess

import pytest

from scripts.gpu_check import BUDGETS, ROOT

pytestmark = pytest.mark.slow


def test_gpu_check_dry_prints_every_part(tmp_path):
    proc = subprocess.run(["bash", "scripts/gpu_check.sh", "--dry", "--out", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "part" in proc.stdout and "json:" in proc.stdout
    files = list(tmp_path.glob("dry-*.json"))
    assert len(files) == 1
    rows = json.loads(files[0].read_text())["rows"]
    assert {r["part"] for r in rows} == set(BUDGETS)
    bad = [r for r in rows if r["status"] != "ok"]
    assert not bad, bad
    items = " | ".join(r["item"] for r in rows)
    for expected in ("parity fp32", "plain vs cached", "bf16 max decode error", "cached+compile", "SigLIP",
                     "SDPA kernels", "ZeRO-2 full", "grad checkpointing", "fused AdamW", "LoRA", "ZeRO-3",
                     "full checkpoint", "LoRA checkpoint", "LoRA merged + reloaded", "part wall time / peak RSS"):
        assert expected in items, expected
