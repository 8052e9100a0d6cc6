"""Latency of one action chunk (DiT + 5 DPM-Solver++ steps): plain vs cached cross-attention K/V.

The language/image conditions are fixed across the DPM steps of a chunk, so their per-block keys and
values can be projected once instead of five times. Both paths run side by side on the same inputs.

    python -m scripts.bench_inference --size tiny            # CPU, seconds
    python -m scripts.bench_inference --size mid             # CPU, hidden 512 x 8 blocks, full 4374 image tokens
    python -m scripts.bench_inference --size 1b --device cuda --dtype bfloat16 \
        --vision_encoder google/siglip-so400m-patch14-384   # SigLIP + DiT, as one policy call
The blocks' norm is also compared: ``release_var`` (timm 1.0.3's variance norm, what the released
weights need, computed in float32) vs ``rms`` (a true RMSNorm), same weights, cached path; printed as
``norm release_var <x> ms, rms <y> ms, ratio <r>``.
Last line: ``plain <x> ms, cached <y> ms, ratio <r>`` (with the config's norm).
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from configs.errors import exit_cli, require_device
from configs.loader import load_config
from models.loading import build_runner

SIZES = {
    "tiny": ("configs/tiny.yaml", []),
    "mid": ("configs/base.yaml", ["model.rdt.hidden_size=512", "model.rdt.depth=8", "model.rdt.num_heads=8"]),
    "1b": ("configs/base.yaml", []),
}


def time_call(fn, repeats: int, device: torch.device) -> float:
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", choices=sorted(SIZES), default="tiny")
    p.add_argument("--set", nargs="*", default=[], help="extra config overrides key.path=value")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--lang_len", type=int, default=32, help="language tokens (LIBERO instructions: ~10-30)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--vision_encoder", default=None,
                   help="also time SigLIP on one observation (2 frames x 2 cameras of --image_size uint8 "
                        "images, the absent camera as the cached background) and add it to both totals")
    p.add_argument("--image_size", type=int, default=128, help="simulator image size for --vision_encoder")
    args = p.parse_args(argv)
    require_device(args.device)

    path, overrides = SIZES[args.size]
    cfg = load_config(path, overrides + args.set)
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    torch.manual_seed(0)
    runner = build_runner(cfg).to(device=device, dtype=dtype).eval()
    torch.nn.init.normal_(runner.model.final_layer.ffn_final.fc2.weight, std=0.02)
    kw, B = runner.init_kwargs, args.batch
    mask = torch.zeros(B, 1, kw["action_dim"], device=device, dtype=dtype)
    mask[..., [10] + list(range(30, 39))] = 1
    inputs = dict(
        lang_tokens=torch.randn(B, args.lang_len, kw["lang_token_dim"], device=device, dtype=dtype),
        lang_attn_mask=torch.ones(B, args.lang_len, dtype=torch.bool, device=device),
        img_tokens=torch.randn(B, kw["img_cond_len"], kw["img_token_dim"], device=device, dtype=dtype),
        state_tokens=torch.randn(B, 1, kw["action_dim"], device=device, dtype=dtype) * mask,
        action_mask=mask, ctrl_freqs=torch.full((B,), 20.0, device=device, dtype=dtype),
        noise=torch.randn(B, kw["pred_horizon"], kw["action_dim"], device=device, dtype=dtype),
    )
    params = sum(p.numel() for p in runner.parameters())
    print(f"size {args.size}: {params / 1e6:.1f}M params, {kw['img_cond_len']} image tokens, batch {B}, "
          f"{args.device} {args.dtype}")
    plain = lambda: runner.predict_action(**inputs, use_cond_cache=False)
    cached = lambda: runner.predict_action(**inputs, use_cond_cache=True)
    plain(), cached()  # warm-up
    diff = (plain() - cached()).abs().max().item()
    t_vision = 0.0
    if args.vision_encoder:
        from models.multimodal_encoder.siglip_encoder import SiglipVisionTower
        tower = SiglipVisionTower(args.vision_encoder, dtype=dtype).to(device)
        images = torch.randint(0, 256, (B, 6, args.image_size, args.image_size, 3), dtype=torch.uint8)
        slot_mask = torch.tensor([True, True, False] * 2).expand(B, -1)
        encode = lambda: tower.encode_slots(images, slot_mask)
        encode()
        t_vision = time_call(encode, args.repeats, device)
        print(f"siglip (4 real images + cached background) {t_vision:.1f} ms")
    by_norm = {}
    for norm in ("release_var", "rms"):
        other = build_runner(load_config(path, overrides + args.set + [f"model.rdt.norm={norm}"]))
        other.load_state_dict(runner.state_dict())
        other = other.to(device=device, dtype=dtype).eval()
        by_norm[norm] = lambda r=other: r.predict_action(**inputs, use_cond_cache=True)
        by_norm[norm]()  # warm-up
    t_plain = interleaved({"plain": plain, "cached": cached}, args.repeats, device)
    t_norm = interleaved(by_norm, args.repeats, device)
    tp, tc = t_plain["plain"] + t_vision, t_plain["cached"] + t_vision
    print(f"max |plain - cached| = {diff:.2e}")
    print(f"norm release_var {t_norm['release_var']:.1f} ms, rms {t_norm['rms']:.1f} ms, "
          f"ratio {t_norm['release_var'] / t_norm['rms']:.2f}  (DiT chunk, cached K/V)")
    print(f"plain {tp:.1f} ms, cached {tc:.1f} ms, ratio {tp / tc:.2f}")


def interleaved(calls: dict, repeats: int, device: torch.device) -> dict:
    """Median ms per call, alternating the calls so that machine noise hits all alike."""
    times = {name: [] for name in calls}
    for _ in range(repeats):
        for name, fn in calls.items():
            times[name].append(time_call(fn, 1, device))
    return {name: statistics.median(t) for name, t in times.items()}


if __name__ == "__main__":
    exit_cli(main)
