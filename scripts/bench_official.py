"""This repository's RDT runner against the official one: same process, same weights, same inputs.

The official ``RDTRunner`` (thu-ml/RoboticsDiffusionTransformer, under its pinned timm 1.0.3) is
imported from a checkout, its random weights are loaded into ours, and one action chunk (5
DPM-Solver++ steps) is timed for each, alternating, over ``--rounds`` rounds; outputs are compared on
the same initial noise. Run it with the official venv's Python (scripts/setup_official_venv.sh):

    bash scripts/setup_official_venv.sh                      # once: .venv-official/ + official-rdt/
    .venv-official/bin/python -m scripts.bench_official --official_repo official-rdt --size mid
Last line: ``official <a> ms, ours <b> ms, ratio <r>`` (medians; ours = the cached-K/V path).
"""
from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import time
import types
from pathlib import Path

import torch

from configs.errors import UserError, exit_cli
from configs.loader import load_config
from scripts.bench_inference import SIZES  # the sizes bench_inference measures

def import_official_runner(repo: Path):
    """The official ``models.rdt_runner.RDTRunner``; its ``models`` package is imported under that
    name and then moved out of ``sys.modules`` so that this repository's ``models`` stays importable."""
    if not (repo / "models" / "rdt_runner.py").is_file():
        raise UserError(f"--official_repo {repo}: no models/rdt_runner.py (a thu-ml/RoboticsDiffusionTransformer "
                        "checkout is expected; scripts/setup_official_venv.sh makes one)")
    ours = {k: m for k, m in sys.modules.items() if k == "models" or k.startswith("models.")}
    for k in ours:
        del sys.modules[k]
    # The official folders have no __init__.py: as namespace packages they would lose to this
    # repository's regular ``models`` package on sys.path, so their paths are set explicitly.
    for name, folder in (("models", repo / "models"), ("models.rdt", repo / "models" / "rdt")):
        pkg = types.ModuleType(name)
        pkg.__path__ = [str(folder.resolve())]
        sys.modules[name] = pkg
    try:
        module = importlib.import_module("models.rdt_runner")
    finally:
        for k in [k for k in sys.modules if k == "models" or k.startswith("models.")]:
            sys.modules["official_rdt." + k] = sys.modules.pop(k)
        sys.modules.update(ours)
    if Path(module.__file__).resolve() != (repo / "models" / "rdt_runner.py").resolve():
        raise RuntimeError(f"imported {module.__file__} instead of the official runner in {repo}")
    return module.RDTRunner


def make_inputs(kw: dict, batch: int, lang_len: int, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(batch, 1, kw["action_dim"])
    mask[..., [10] + list(range(30, 39))] = 1
    return dict(lang_tokens=torch.randn(batch, lang_len, kw["lang_token_dim"], generator=g),
                lang_attn_mask=torch.ones(batch, lang_len, dtype=torch.bool),
                img_tokens=torch.randn(batch, kw["img_cond_len"], kw["img_token_dim"], generator=g),
                state_tokens=torch.randn(batch, 1, kw["action_dim"], generator=g) * mask, action_mask=mask,
                ctrl_freqs=torch.full((batch,), 20.0))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--official_repo", required=True, help="checkout of thu-ml/RoboticsDiffusionTransformer")
    p.add_argument("--size", choices=sorted(SIZES), default="mid")
    p.add_argument("--rounds", type=int, default=7, help="alternating timed rounds (>= 5)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--lang_len", type=int, default=30, help="language tokens (LIBERO instructions: ~10-30)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = p.parse_args(argv)
    if args.rounds < 5:
        raise UserError(f"--rounds {args.rounds}: at least 5")
    import timm

    if timm.__version__ != "1.0.3":
        raise UserError(f"timm {timm.__version__}: the official runner is measured under its pinned timm 1.0.3; "
                        "run with .venv-official/bin/python (bash scripts/setup_official_venv.sh)")
    if args.threads:
        torch.set_num_threads(args.threads)
    Official = import_official_runner(Path(args.official_repo))
    from models.loading import build_runner, runner_kwargs_from_config

    path, overrides = SIZES[args.size]
    cfg = load_config(path, overrides)
    kw = runner_kwargs_from_config(cfg)
    torch.manual_seed(0)
    official = Official(**kw, dtype=torch.float32).eval()
    with torch.no_grad():  # the zero-initialised output layer would make every output equal
        official.model.final_layer.ffn_final.fc2.weight.normal_(std=0.02)
    ours = build_runner(cfg).eval()
    ours.load_state_dict(official.state_dict())
    inputs = make_inputs(kw, args.batch, args.lang_len)
    shape = (args.batch, kw["pred_horizon"], kw["action_dim"])

    def run_official(seed: int = 0) -> torch.Tensor:
        torch.manual_seed(seed)  # the official sampler draws its noise from the global generator
        with torch.no_grad():
            return official.predict_action(**inputs)

    def run_ours(seed: int = 0, cached: bool = True) -> torch.Tensor:
        torch.manual_seed(seed)
        noise = torch.randn(shape)
        with torch.no_grad():
            return ours.predict_action(**inputs, noise=noise, use_cond_cache=cached)

    want = run_official()
    diff_cached = (run_ours() - want).abs().max().item()
    diff_plain = (run_ours(cached=False) - want).abs().max().item()
    n = sum(p.numel() for p in ours.parameters())
    print(f"size {args.size}: {n / 1e6:.1f}M parameters, {kw['img_cond_len']} image tokens, {args.lang_len} language "
          f"tokens, batch {args.batch}, fp32, {torch.get_num_threads()} threads, torch {torch.__version__}, timm {timm.__version__}")
    print(f"max |official - ours| = {diff_cached:.1e} (cached K/V), {diff_plain:.1e} (plain)")
    times = {"official": [], "ours": []}
    for r in range(args.rounds):
        for name, fn in (("official", run_official), ("ours", run_ours)):
            t = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t) * 1e3)
        print(f"round {r}: official {times['official'][-1]:.0f} ms, ours {times['ours'][-1]:.0f} ms")
    a, b = statistics.median(times["official"]), statistics.median(times["ours"])
    print(f"official {a:.1f} ms, ours {b:.1f} ms, ratio {a / b:.2f}")
    return 0


if __name__ == "__main__":
    exit_cli(main)
