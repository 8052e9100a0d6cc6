"""The benchmark scripts run and end with their documented ratio line (no timing assertions)."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run(*args, timeout=900, lines=1):
    proc = subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout.strip().splitlines()[-lines:]
    return out[0] if lines == 1 else out


def test_bench_inference_line(tiny_encoders_dir):
    norm, last = run("scripts.bench_inference", "--size", "tiny", "--repeats", "2",
                     "--set", f"model.vision_encoder={tiny_encoders_dir / 'siglip'}",
                     "--vision_encoder", str(tiny_encoders_dir / "siglip"), lines=2)
    assert re.match(r"norm release_var [\d.]+ ms, rms [\d.]+ ms, ratio [\d.]+", norm), norm
    assert re.fullmatch(r"plain [\d.]+ ms, cached [\d.]+ ms, ratio [\d.]+", last), last


@pytest.mark.slow
def test_bench_train_line(tiny_encoders_dir, fixture_suite):
    last = run("scripts.bench_train", "--steps", "4", "--batch", "4", "--lora_rank", "4", "--set",
               f"model.vision_encoder={tiny_encoders_dir / 'siglip'}", f"model.text_encoder={tiny_encoders_dir / 't5'}",
               f"dataset.datasets_config={fixture_suite['suites']}", f"dataset.stats_path={fixture_suite['stats']}")
    assert re.fullmatch(r"full [\d.]+ samples/s [\d.]+ MB ckpt, lora [\d.]+ samples/s [\d.]+ MB ckpt", last), last
