"""This repository's RDT runner against the official one: same process, same weights, same inputs.

The official ``RDTRunner`` (thu-ml/RoboticsDiffusionTransformer, under its pinned timm 1.0.3) is
imported from a checkout, its random weights are loaded into ours, and one action chunk (5
DPM-Solver++ steps) is timed for each, alternating, over ``--rounds`` rounds; outputs are compared on
the same initial noise. Run it with the official venv's Python (scripts/setup_official_venv.sh):

    bash scripts/setup_official_venv.sh                      # once: .venv-official/ + official-rdt/
    .venv-official/bin/python -m scripts.bench_official --official_repo official-rdt --size mid
Last line: ``official <a> ms, ours <b> ms, ratio <r>`` (medians; ours = the cached-K/V path, and
with ``--compile`` that path through ``RDTRunner.compile_for_inference``: inductor, frozen weights;
the eager cached path is then timed in the same rounds and printed on the line before).
"""
from __future__ import annotations

import argparse
import copy
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


def steady_allocator() -> str:
    """Keep glibc's allocator in one state for the whole run: large blocks from the heap, freed
    memory kept. By default its mmap threshold moves with the process's history, so the official
    runner's ~18 MB per-step K/V tensors are fresh zeroed pages in one process and reused heap in
    another: 878-1064 ms per chunk were measured for the same code. Both runners get the steady state."""
    from utils import allocator

    return "glibc heap only, no trimming" if allocator.steady() else "the platform's default (mallopt unavailable)"


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
    p.add_argument("--compile", action="store_true",
                   help="also time ours through torch.compile (inductor, frozen weights); the last line uses it")
    args = p.parse_args(argv)
    if args.rounds < 5:
        raise UserError(f"--rounds {args.rounds}: at least 5")
    import timm

    if timm.__version__ != "1.0.3":
        raise UserError(f"timm {timm.__version__}: the official runner is measured under its pinned timm 1.0.3; "
                        "run with .venv-official/bin/python (bash scripts/setup_official_venv.sh)")
    allocator = steady_allocator()
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

    compiled = copy.deepcopy(ours)  # its own module: freezing makes the weights constants of its graph

    def run_ours(seed: int = 0, cached: bool = True, runner=ours) -> torch.Tensor:
        torch.manual_seed(seed)
        noise = torch.randn(shape)
        with torch.no_grad():
            return runner.predict_action(**inputs, noise=noise, use_cond_cache=cached)

    want = run_official()
    diffs = {"cached K/V": run_ours(), "plain": run_ours(cached=False)}
    runs = {"official": run_official, "ours": run_ours}
    if args.compile:
        compiled.compile_for_inference()
        t = time.perf_counter()
        diffs["cached K/V, compiled"] = run_ours(runner=compiled)  # compiles here
        print(f"torch.compile (inductor, frozen weights): {time.perf_counter() - t:.1f} s on the first chunk")
        runs["ours compiled"] = lambda: run_ours(runner=compiled)
    n = sum(p.numel() for p in ours.parameters())
    print(f"size {args.size}: {n / 1e6:.1f}M parameters, {kw['img_cond_len']} image tokens, {args.lang_len} language "
          f"tokens, batch {args.batch}, fp32, {torch.get_num_threads()} threads, torch {torch.__version__}, timm {timm.__version__}, "
          f"allocator: {allocator}")
    print("max |official - ours| = " + ", ".join(f"{(out - want).abs().max().item():.1e} ({name})"
                                                  for name, out in diffs.items()))
    times = {name: [] for name in runs}
    for r in range(args.rounds):
        for name, fn in runs.items():
            t = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t) * 1e3)
        print(f"round {r}: " + ", ".join(f"{name} {ts[-1]:.0f} ms" for name, ts in times.items()))
    med = {name: statistics.median(ts) for name, ts in times.items()}
    a = med["official"]
    if args.compile:
        print(f"ours eager (cached K/V): {med['ours']:.1f} ms, ratio {a / med['ours']:.2f}")
    b = med["ours compiled" if args.compile else "ours"]
    print(f"official {a:.1f} ms, ours {b:.1f} ms, ratio {a / b:.2f}")
    return 0


if __name__ == "__main__":
    exit_cli(main)
