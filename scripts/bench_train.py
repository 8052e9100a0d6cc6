"""Training throughput, full fine-tuning vs LoRA, side by side on the same data and config.

Each variant runs ``main_sft.py`` in its own process (so peak memory is its own) for a few steps;
reported: samples/s (median over logged steps after warm-up), peak memory, trainable parameters and
the size of one checkpoint's model files (without optimizer state).

    python -m scripts.bench_train                       # tiny config on the CPU, demo data
    python -m scripts.bench_train --config configs/base.yaml --steps 20 --batch 8 --extra --mixed_precision bf16
Last line: ``full <x> samples/s <m> MB ckpt, lora <y> samples/s <n> MB ckpt``.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from configs.errors import exit_cli

REPO = Path(__file__).resolve().parents[1]


def run_variant(name: str, args, workdir: Path, extra: list[str]) -> dict:
    out = workdir / name
    cmd = [sys.executable, "main_sft.py", "--config_path", args.config, "--output_dir", str(out),
           "--max_train_steps", str(args.steps), "--checkpointing_period", str(args.steps),
           "--train_batch_size", str(args.batch), "--log_period", "1", "--report_to", "none",
           "--learning_rate", "1e-4", "--dataloader_num_workers", str(args.workers), *extra, *args.extra]
    if args.set:
        cmd += ["--set", *args.set]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{name} run failed:\n{proc.stderr[-3000:]}")
    recs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    rates = [r["samples_per_s"] for r in recs if "samples_per_s" in r and r["step"] > 2]
    ckpt = out / f"checkpoint-{args.steps}"
    model_bytes = sum(p.stat().st_size for p in ckpt.glob("*.safetensors"))
    log_text = (out / "training.log").read_text()
    trainable = float(log_text.split("M trainable params")[0].rsplit(" ", 1)[-1])
    return {"samples_per_s": statistics.median(rates) if rates else float("nan"),
            "peak_mem_mb": max(r.get("peak_mem_mb", 0) for r in recs),
            "trainable_m": trainable, "ckpt_mb": model_bytes / 2**20}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="configs/tiny.yaml")
    p.add_argument("--set", nargs="*", default=[], help="config overrides (e.g. dataset.datasets_config=...)")
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--lora_rank", type=int, default=32)
    p.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more main_sft.py flags for both runs")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        full = run_variant("full", args, Path(tmp), [])
        # LoRA needs base weights (a random RDT's zero output layer gives the adapters no gradient):
        # the full run's checkpoint, unless --extra names a base
        base = Path(tmp) / "full" / f"checkpoint-{args.steps}"
        lora = run_variant("lora", args, Path(tmp), ["--use_lora", "--lora_rank", str(args.lora_rank),
                                                      "--lora_alpha", str(2 * args.lora_rank),
                                                      "--pretrained_model_name_or_path", str(base)])
    for name, r in (("full", full), ("lora", lora)):
        print(f"{name}: {r['samples_per_s']:.1f} samples/s, peak memory {r['peak_mem_mb']:.0f} MB, "
              f"{r['trainable_m']:.2f}M trainable params, checkpoint model files {r['ckpt_mb']:.2f} MB")
    print(f"full {full['samples_per_s']:.1f} samples/s {full['ckpt_mb']:.2f} MB ckpt, "
          f"lora {lora['samples_per_s']:.1f} samples/s {lora['ckpt_mb']:.2f} MB ckpt")


if __name__ == "__main__":
    exit_cli(main)
