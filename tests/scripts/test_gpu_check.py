"""scripts/gpu_check.sh --dry: the GPU-node check's every part runs on the CPU with the tiny config,
so the script cannot rot between the rare GPU sessions."""
import json
import subprocess

import pytest

from scripts.gpu_check import BUDGETS, ROOT



def test_peak_memory_counts_pages_a_forked_child_shares_once():
    """A child forked after the parent filled 400 MB shares those pages: the sum of RSS would count
    them twice, the sum of PSS once."""
    import multiprocessing as mp

    import numpy as np
    import psutil

    from scripts.gpu_check import PeakMemory

    big = np.ones(400 * 2**20 // 8)  # touched: resident in the parent
    ready, stop = mp.get_context("fork").Event(), mp.get_context("fork").Event()

    def child():
        assert big[-1] == 1.0  # reads only: the pages stay shared
        ready.set()
        stop.wait(30)

    p = mp.get_context("fork").Process(target=child)
    p.start()
    try:
        assert ready.wait(30)
        rss_sum = psutil.Process().memory_info().rss + psutil.Process(p.pid).memory_info().rss
        with PeakMemory() as mem:
            pass
        assert rss_sum > 2 * big.nbytes  # what the old RSS sum reported
        assert mem.peak < rss_sum - 0.8 * big.nbytes, (mem.peak, rss_sum)
    finally:
        stop.set()
        p.join(30)


@pytest.mark.slow
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
    for expected in ("parity fp32", "plain vs cached", "language padded to", "bf16 max decode error", "cached+compile", "SigLIP",
                     "SDPA kernels", "ZeRO-2 full", "grad checkpointing", "fused AdamW", "LoRA", "ZeRO-3",
                     "full checkpoint", "LoRA checkpoint", "LoRA merged + reloaded", "part wall time / peak memory"):
        assert expected in items, expected


@pytest.mark.slow
def test_gpu_check_at_the_released_size_on_the_cpu(tmp_path):
    """``--cpu_full_size``: RDT-1B's geometry end to end on the CPU (a LoRA step through main_sft +
    ZeRO-2, resume, merge + reload, plain vs cached chunk, the released layout). ~7 min and ~17 GB
    (PSS) on 2 cores; every part must finish ok, so a size bug shows here before a GPU run."""
    proc = subprocess.run(["bash", "scripts/gpu_check.sh", "--cpu_full_size", "--out", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(next(tmp_path.glob("cpu-full-size-*.json")).read_text())["rows"]
    assert {r["part"] for r in rows} == {"correctness", "inference", "train", "zero3", "save_resume", "layout"}
    skipped = [r for r in rows if r["status"].startswith("skipped: 16 B/parameter")]  # ZeRO-3: its memory need
    assert [r["part"] for r in skipped] == ["zero3"]
    bad = [r for r in rows if r["status"] != "ok" and r not in skipped]
    assert not bad, bad
    items = " | ".join(r["item"] for r in rows)
    for expected in ("plain vs cached predict_action (float32", "language padded to 1024 tokens", "ZeRO-2 LoRA", "LoRA merged + reloaded",
                     "released layout"):
        assert expected in items, expected
