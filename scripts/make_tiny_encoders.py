"""Build tiny random SigLIP and T5 encoders (+ a locally trained T5 tokenizer) for CPU runs.

They load through exactly the same ``from_pretrained`` code as the real encoders, so the tiny
pipeline exercises the real loading path without any download (`models.multimodal_encoder.tiny`).

    python -m scripts.make_tiny_encoders --out checkpoints/tiny_encoders
"""
from __future__ import annotations

import argparse
import logging

from configs.errors import exit_cli
from models.multimodal_encoder.tiny import build_tiny_encoders


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="checkpoints/tiny_encoders", help="output folder (siglip/ and t5/)")
    parser.add_argument("--text_dim", type=int, default=32, help="T5 d_model (= model.lang_token_dim)")
    parser.add_argument("--vision_dim", type=int, default=32, help="SigLIP hidden (= model.img_token_dim)")
    parser.add_argument("--image_size", type=int, default=64)
    parser.add_argument("--patch_size", type=int, default=16, help="tokens per image = (size/patch)^2")
    parser.add_argument("--vocab_size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="rebuild even if present")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    build_tiny_encoders(args.out, args.text_dim, args.vision_dim, args.image_size, args.patch_size,
                        args.vocab_size, args.seed, args.force)


if __name__ == "__main__":
    exit_cli(main)
