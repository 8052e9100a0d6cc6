"""Merge a LoRA checkpoint (adapter + its recorded base) into a plain full checkpoint.

    python -m scripts.merge_lora checkpoints/run-lora/checkpoint-2000 --out checkpoints/run-lora/merged-2000
The result loads anywhere a full checkpoint does (evaluation, further fine-tuning, the official code).
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from configs.errors import UserError, exit_cli, output_dir
from models.loading import save_pretrained
from models.lora import load_lora_runner


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="LoRA checkpoint folder (adapter_config.json + rdt_base.json)")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    out = output_dir(args.out, "--out", create=False)
    if out.resolve() == Path(args.checkpoint).resolve():
        raise UserError(f"--out {out}: is the LoRA checkpoint itself; write the merged model to another folder")
    runner = load_lora_runner(args.checkpoint, merge=True)
    save_pretrained(runner, out)
    src = Path(args.checkpoint) / "train_config.json"
    if src.is_file():
        shutil.copy(src, out / "train_config.json")
    print(f"merged {args.checkpoint} -> {args.out}")


if __name__ == "__main__":
    exit_cli(main)
