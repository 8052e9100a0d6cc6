"""Encode every distinct instruction of the fine-tuning suites once with T5 (plus "" for language
dropout) and store one (L, D) tensor per instruction with a manifest (policy/lang_embeddings.py).

    python -m scripts.preprocess_language_embeddings --config configs/base.yaml \
        --out data/datasets/lang_embeddings [--device cuda --dtype bfloat16 --offload_dir /tmp/t5off]
Training then uses them with ``main_sft.py --precomp_lang_embed data/datasets/lang_embeddings`` and
never loads T5-XXL (about 9 GB in bf16) next to the model.
"""
from __future__ import annotations

import argparse
import logging

import torch

from configs.errors import UserError, exit_cli, output_dir, require_device
from configs.loader import load_config
from data import libero_hdf5 as lh
from data import lerobot_dataset as lr
from data.dataset import load_suite_specs
from policy.lang_embeddings import normalize_instruction, write_lang_embedding_store

log = logging.getLogger("preprocess_language_embeddings")


def collect_instructions(datasets_config: str, source: str, suites=None) -> list[str]:
    """Distinct instructions of every file of the chosen suites (the text training will look up)."""
    found = set()
    for spec in load_suite_specs(datasets_config, suites):
        if spec.format == lr.FORMAT:  # the dataset's own task texts
            root = lr.resolve_root(spec.path, spec.options["source"], spec.options.get("revision"))
            found.update(normalize_instruction(e.task) for e in lr.LeRobotLibero(root, spec.options.get("keys")).episodes)
            continue
        for path in lh.list_suite_files(spec.path):
            with lh.open_file(path) as f:
                found.add(normalize_instruction(lh.read_instruction(f, path, spec.instruction_source or source)))
    return sorted(found)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="configs/base.yaml", help="gives text_encoder, tokenizer length, lang dim")
    p.add_argument("--set", nargs="*", action="extend", default=None, metavar="KEY=VALUE")
    p.add_argument("--datasets_config", default=None, help="default: dataset.datasets_config of the config")
    p.add_argument("--suites", nargs="*", default=None, help="subset of suites (default: all in the table)")
    p.add_argument("--extra", nargs="*", default=[], help="more instructions to encode (e.g. eval-only tasks)")
    p.add_argument("--text_encoder", default=None, help="default: model.text_encoder of the config")
    p.add_argument("--out", default="data/datasets/lang_embeddings")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--offload_dir", default=None, help="let accelerate offload T5 layers to this folder")
    p.add_argument("--batch_size", type=int, default=8)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    require_device(args.device)

    from models.multimodal_encoder.t5_encoder import T5Embedder, check_encoder_source

    cfg = load_config(args.config, args.set or [])
    ds = cfg["dataset"]
    name = args.text_encoder or cfg["model"]["text_encoder"]
    check_encoder_source(name, "T5 text encoder")  # a typo in a local path: now, not after the data is read
    out = output_dir(args.out, "--out", create=False)
    if args.batch_size < 1:
        raise UserError(f"--batch_size is {args.batch_size}; expected a whole number >= 1")
    instructions = collect_instructions(args.datasets_config or ds["datasets_config"], ds["instruction_source"],
                                        args.suites)
    instructions = sorted(set(instructions) | {normalize_instruction(t) for t in args.extra} | {""})
    encoder = T5Embedder(name, max_length=ds["tokenizer_max_length"], dtype=getattr(torch, args.dtype),
                         device=args.device, offload_dir=args.offload_dir)
    if encoder.hidden_size != cfg["model"]["lang_token_dim"]:
        raise UserError(f"{name} gives {encoder.hidden_size}-d embeddings but model.lang_token_dim is "
                         f"{cfg['model']['lang_token_dim']} (RDT-1B needs google/t5-v1_1-xxl)")
    embeddings = {}
    for i in range(0, len(instructions), args.batch_size):
        chunk = instructions[i:i + args.batch_size]
        emb, mask = encoder.encode(chunk)
        for text, e, m in zip(chunk, emb, mask):
            embeddings[text] = e[m].float().cpu()  # valid tokens only: (L_i, D)
    manifest = write_lang_embedding_store(out, embeddings, model=name)
    log.info(f"{len(embeddings)} instructions ({len(embeddings) - 1} + the empty one) -> {manifest}")


if __name__ == "__main__":
    exit_cli(main)
