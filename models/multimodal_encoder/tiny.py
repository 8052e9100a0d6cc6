"""Tiny random SigLIP and T5 encoders (+ a locally trained T5 tokenizer) for CPU runs.

They are saved with ``save_pretrained`` and later loaded through exactly the same
``from_pretrained`` code as ``google/siglip-so400m-patch14-384`` and ``google/t5-v1_1-xxl``, so
the tiny pipeline exercises the real loading path without any download
(``python -m scripts.make_tiny_encoders`` is the CLI).
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch

log = logging.getLogger(__name__)

# Training corpus of the tokenizer: LIBERO-style instructions and plain words, so real
# instructions tokenize into sub-words rather than <unk>.
_CORPUS = [
    "put the bowl on the stove", "put the bowl on the plate", "put the wine bottle on top of the cabinet",
    "open the middle drawer of the cabinet", "open the top drawer and put the bowl inside",
    "push the plate to the front of the stove", "put the cream cheese in the bowl",
    "turn on the stove", "put the bowl on top of the cabinet", "put the wine bottle on the rack",
    "pick up the alphabet soup and place it in the basket", "pick up the black bowl between the plate "
    "and the ramekin and place it on the plate", "pick up the ketchup and place it in the basket",
    "put both the alphabet soup and the tomato sauce in the basket", "close the top drawer of the cabinet",
    "put the black bowl in the bottom drawer of the cabinet and close it", "turn off the stove",
    "put the yellow and white mug in the microwave and close it", "pick up the book and place it in the "
    "back compartment of the caddy", "put the white mug on the left plate and put the yellow and white "
    "mug on the right plate", "stack the black bowl on the left on top of the black bowl on the right",
    "abcdefghijklmnopqrstuvwxyz 0123456789",
]


def build_tokenizer(out_dir: Path, vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import T5TokenizerFast

    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=["<pad>", "</s>", "<unk>"],
                                      unk_token="<unk>", show_progress=False)
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", tok.token_to_id("</s>"))])
    fast = T5TokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                           extra_ids=0)
    fast.save_pretrained(out_dir)
    return fast


def build_t5(out_dir: Path, d_model: int, vocab_size: int) -> None:
    from transformers import T5Config, T5EncoderModel

    cfg = T5Config(vocab_size=vocab_size, d_model=d_model, d_kv=d_model // 4, d_ff=2 * d_model, num_layers=2,
                   num_heads=4, feed_forward_proj="gated-gelu", dropout_rate=0.0, tie_word_embeddings=False,
                   pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
    T5EncoderModel(cfg).save_pretrained(out_dir)


def build_siglip(out_dir: Path, hidden: int, image_size: int, patch_size: int) -> None:
    from transformers import SiglipVisionConfig, SiglipVisionModel

    try:  # transformers >= 5 without torchvision: the PIL processor (same config file, no fallback note)
        from transformers import SiglipImageProcessorPil as ImageProcessor
    except ImportError:
        from transformers import SiglipImageProcessor as ImageProcessor

    cfg = SiglipVisionConfig(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                             num_attention_heads=4, image_size=image_size, patch_size=patch_size)
    SiglipVisionModel(cfg).save_pretrained(out_dir)
    ImageProcessor(size={"height": image_size, "width": image_size}, resample=3,
                   image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5]).save_pretrained(out_dir)


def build_tiny_encoders(out: str | Path, text_dim: int = 32, vision_dim: int = 32, image_size: int = 64,
                        patch_size: int = 16, vocab_size: int = 256, seed: int = 0, force: bool = False) -> Path:
    """``<out>/siglip`` and ``<out>/t5`` (kept when both exist, unless `force`); returns `out`."""
    out = Path(out)
    if not force and (out / "siglip" / "config.json").is_file() and (out / "t5" / "config.json").is_file():
        log.info(f"tiny encoders already in {out} (use --force to rebuild)")
        return out
    torch.manual_seed(seed)
    tokenizer = build_tokenizer(out / "t5", vocab_size)
    build_t5(out / "t5", text_dim, max(vocab_size, len(tokenizer)))
    build_siglip(out / "siglip", vision_dim, image_size, patch_size)
    log.info(f"tiny encoders written to {out}: SigLIP {image_size}px/{patch_size} -> "
             f"{(image_size // patch_size) ** 2} x {vision_dim}, T5 d_model {text_dim}")
    return out
