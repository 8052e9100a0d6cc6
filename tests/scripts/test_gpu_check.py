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
    for expected in ("parity fp32", "plain vs cached", "bf16 max decode error", "cached+compile", "SigLIP",
                     "SDPA kernels", "ZeRO-2 full", "grad checkpointing", "fused AdamW", "LoRA", "ZeRO-3",
                     "full checkpoint", "LoRA checkpoint", "LoRA merged + reloaded", "part wall time / peak memory"):
        assert expected in items, expected
