"""One prepared, unattended check of RDT-1B on a GPU node: correctness, inference and training
figures, each measured side by side in the same run. No downloads: random-init RDT-1B from
configs/base.yaml and SigLIP-so400m geometry with random weights (or the real encoder with
``--vision_encoder``), precomputed random T5-XXL-sized language embeddings, the repo's LIBERO-format
fixture file as training data.

    bash scripts/gpu_check.sh                 # GPU: ~8 min, table + outs/gpu_check/<time>.json
    bash scripts/gpu_check.sh --dry           # CPU, tiny config: the same code paths (CI)

Parts (each has a time budget and is skipped with a printed reason when the total budget runs out):
  correctness  parity fixtures in fp32 on the device (atol 1e-5); plain vs cached-K/V predict_action
               in the run's dtype; bf16 decode error of the fixture's actions (check_precision)
  inference    one 64-action chunk, batch 1 and 8: plain vs cached K/V vs cached + torch.compile
               (p50/p90 ms); SigLIP on 2 frames x 2 cameras; the SDPA kernels that run
  train        main_sft.py through DeepSpeed ZeRO-2, one process: samples/s, peak memory, share of
               step time waiting for data and encoding images -- full, full + gradient
               checkpointing, full + fused AdamW, LoRA (all with precomputed language embeddings)
  zero3        two ZeRO-3 steps
  save_resume  checkpoint sizes (full, LoRA) and one resumed step from each
The script exits 0 once it has printed its table (failed parts are rows with their error).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable, Sequence

import torch

from configs.errors import exit_cli
from configs.loader import load_config
from utils.atomic import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "libero_format" / "put_the_bowl_on_the_stove_demo.hdf5"
PARITY = [ROOT / "tests" / "fixtures" / n for n in ("rdt_tiny_reference_release_norm.pt", "rdt_tiny_reference.pt")]
# SigLIP so400m/14 at 384 px (google/siglip-so400m-patch14-384's config)
SO400M = dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27, num_attention_heads=16,
              image_size=384, patch_size=14)
# (budget s) per part; --dry runs the tiny config on the CPU with the same parts
BUDGETS = {"correctness": 60, "inference": 120, "train": 240, "zero3": 60, "save_resume": 60}


class Check:
    """Runs the parts in order within a total budget; collects their rows."""

    def __init__(self, total_s: float):
        self.deadline = time.perf_counter() + total_s
        self.rows: list[dict] = []

    def part(self, name: str, fn: Callable[[], list[dict]]) -> None:
        left = self.deadline - time.perf_counter()
        if left < BUDGETS[name] * 0.5:
            self.rows.append({"part": name, "item": "-", "status": f"skipped: {left:.0f} s left, needs ~{BUDGETS[name]} s"})
            return
        t0 = time.perf_counter()
        try:
            rows = fn()
            for r in rows:
                r.setdefault("status", "ok")
            self.rows += [{"part": name, **r} for r in rows]
        except Exception as e:  # a failed part is a row, the others still run
            self.rows.append({"part": name, "item": "-", "status": f"error: {type(e).__name__}: {e}"[:300]})
            traceback.print_exc()
        print(f"[gpu_check] {name}: {time.perf_counter() - t0:.0f} s", flush=True)


# ------------------------------------------------------------------------------------------- setup
# The language embeddings are random stand-ins: the config names them so, and training, which checks
# that a store was made by model.text_encoder, accepts them (a cache miss would fail loudly).
RANDOM_TEXT_ENCODER = "random (gpu_check)"


def build_assets(work: Path, cfg: dict, dry: bool, vision_encoder: str | None) -> dict:
    """Encoders, language embeddings, a datasets table over the fixture file, its statistics."""
    from policy.lang_embeddings import write_lang_embedding_store
    from scripts.compute_dataset_stats import main as compute_stats
    from scripts.make_tiny_encoders import main as make_tiny

    m = cfg["model"]
    if vision_encoder:
        vision = vision_encoder
    elif dry:
        make_tiny(["--out", str(work / "enc"), "--image_size", "64", "--vision_dim", str(m["img_token_dim"]),
                   "--text_dim", str(m["lang_token_dim"])])
        vision = str(work / "enc" / "siglip")
    else:
        vision = str(random_so400m(work / "siglip"))
    g = torch.Generator().manual_seed(0)
    lang = work / "lang"
    write_lang_embedding_store(lang, {s: torch.randn(12, m["lang_token_dim"], generator=g)
                                      for s in ("put the bowl on the stove", "")}, model=RANDOM_TEXT_ENCODER)
    (work / "fix").mkdir(exist_ok=True)
    link = work / "fix" / FIXTURE.name
    if not link.exists():
        link.symlink_to(FIXTURE)
    suites = work / "suites.json"
    suites.write_text(json.dumps({"fix": {"path": str(work / "fix"), "sample_weight": 1.0, "layout": "raw"}}))
    stats = work / "stats.json"
    compute_stats(["--datasets_config", str(suites), "--out", str(stats), "--config", cfg["_path"],
                   "--cache_dir", str(work / "cache")])
    return {"vision": vision, "lang": lang, "suites": suites, "stats": stats}


def random_so400m(out: Path) -> Path:
    from transformers import SiglipVisionConfig, SiglipVisionModel

    try:  # transformers >= 5 without torchvision: the PIL processor
        from transformers import SiglipImageProcessorPil as SiglipImageProcessor
    except ImportError:
        from transformers import SiglipImageProcessor

    if not (out / "config.json").is_file():
        torch.manual_seed(0)
        SiglipVisionModel(SiglipVisionConfig(**SO400M)).save_pretrained(out)
        SiglipImageProcessor(size={"height": 384, "width": 384}, resample=3, image_mean=[0.5] * 3,
                             image_std=[0.5] * 3).save_pretrained(out)
    return out


# ------------------------------------------------------------------------------------- correctness
def correctness(cfg: dict, device: torch.device, dtype: torch.dtype) -> list[dict]:
    from models.loading import build_runner
    from scripts import check_precision
    from models.parity import dit_forward, runner_from_fixture_config

    rows = []
    for path in PARITY:
        ref = torch.load(path, weights_only=False, map_location="cpu")
        r = runner_from_fixture_config(ref["config"], ref["norm"])
        r.load_state_dict(ref["state_dict"])
        r = r.to(device).eval()
        inp = {k: v.to(device) if torch.is_tensor(v) else v for k, v in ref["inputs"].items()}
        with torch.no_grad():
            err_fwd = (dit_forward(r, inp).cpu() - ref["outputs"]["dit_forward"]).abs().max().item()
        rows.append({"item": f"parity fp32 {path.stem}", "value": f"{err_fwd:.1e}",
                     "status": "ok" if err_fwd < 1e-5 else "FAIL (atol 1e-5)"})
    runner = build_runner(cfg).to(device=device, dtype=dtype).eval()
    torch.nn.init.normal_(runner.model.final_layer.ffn_final.fc2.weight, std=0.02)
    inputs = chunk_inputs(runner, 2, device, dtype)
    diff = (runner.predict_action(**inputs, use_cond_cache=False)
            - runner.predict_action(**inputs, use_cond_cache=True)).abs().max().item()
    tol = 1e-4 if dtype == torch.float32 else 2e-2
    rows.append({"item": f"plain vs cached predict_action ({str(dtype)[6:]})", "value": f"{diff:.1e}",
                 "status": "ok" if diff <= tol else f"FAIL (tol {tol})"})
    prec = check_precision.check_files([FIXTURE])
    worst = max(max(r["target"], r["sampler"]) for r in prec)
    rows.append({"item": "bf16 max decode error, fixture (action units)", "value": f"{worst:.1e}",
                 "status": "ok" if worst <= 0.005 else "FAIL (<= 0.005)"})
    return rows


def chunk_inputs(runner, B: int, device, dtype) -> dict:
    kw = runner.init_kwargs
    g = torch.Generator().manual_seed(0)
    rnd = lambda *shape: torch.randn(*shape, generator=g).to(device=device, dtype=dtype)
    mask = torch.zeros(B, 1, kw["action_dim"])
    mask[..., [10] + list(range(30, 39))] = 1
    mask = mask.to(device=device, dtype=dtype)
    return dict(lang_tokens=rnd(B, 24, kw["lang_token_dim"]),
                lang_attn_mask=torch.ones(B, 24, dtype=torch.bool, device=device),
                img_tokens=rnd(B, kw["img_cond_len"], kw["img_token_dim"]),
                state_tokens=rnd(B, 1, kw["action_dim"]) * mask, action_mask=mask,
                ctrl_freqs=torch.full((B,), 20.0, device=device, dtype=dtype),
                noise=rnd(B, kw["pred_horizon"], kw["action_dim"]).float())


# --------------------------------------------------------------------------------------- inference
def timings(fn: Callable, repeats: int, device) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.9 * len(times)))]


def sdpa_kernels(runner, inputs: dict) -> str:
    """The scaled-dot-product-attention backends that run this model's attention here."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    ok = []
    for name in ("FLASH_ATTENTION", "EFFICIENT_ATTENTION", "CUDNN_ATTENTION", "MATH"):
        backend = getattr(SDPBackend, name, None)
        if backend is None:
            continue
        try:
            with sdpa_kernel([backend]):
                runner.predict_action(**inputs)
            ok.append(name.lower())
        except RuntimeError:
            pass
    return ", ".join(ok) or "none"


def inference(cfg: dict, device, dtype, vision: str, repeats: int, compile_: bool) -> list[dict]:
    from models.loading import build_runner
    from models.multimodal_encoder.siglip_encoder import SiglipVisionTower

    runner = build_runner(cfg).to(device=device, dtype=dtype).eval()
    torch.nn.init.normal_(runner.model.final_layer.ffn_final.fc2.weight, std=0.02)
    rows = []
    for B in (1, 8):
        inputs = chunk_inputs(runner, B, device, dtype)
        calls = {"plain": lambda: runner.predict_action(**inputs, use_cond_cache=False),
                 "cached": lambda: runner.predict_action(**inputs, use_cond_cache=True)}
        for f in calls.values():
            f()
        res = {k: timings(f, repeats, device) for k, f in calls.items()}
        if compile_:
            eager = runner.model
            # --dry: dynamo's graph capture without inductor's C++ build (minutes on a CPU)
            backend = "inductor" if device.type == "cuda" else "aot_eager"
            runner.model = torch.compile(eager, dynamic=False, backend=backend)
            try:
                t0 = time.perf_counter()
                runner.predict_action(**inputs)
                warm = time.perf_counter() - t0
                res["cached+compile"] = timings(lambda: runner.predict_action(**inputs), repeats, device)
                rows.append({"item": f"torch.compile warm-up, batch {B}", "value": f"{warm:.1f} s"})
            finally:
                runner.model = eager
        base = res["plain"][0]
        for k, (p50, p90) in res.items():
            rows.append({"item": f"chunk batch {B} {k} (p50/p90 ms)", "value": f"{p50:.1f} / {p90:.1f}",
                         "ratio": f"{base / p50:.2f}x vs plain"})
        if B == 1:
            rows.append({"item": "SDPA kernels that run", "value": sdpa_kernels(runner, inputs)})
    tower = SiglipVisionTower(vision, dtype=dtype).to(device)
    for B in (1, 8):
        size = 128
        images = torch.randint(0, 256, (B, 6, size, size, 3), dtype=torch.uint8)
        slots = torch.tensor([True, True, False] * 2).expand(B, -1)
        tower.encode_slots(images, slots)
        p50, p90 = timings(lambda: tower.encode_slots(images, slots), repeats, device)
        rows.append({"item": f"SigLIP 2 frames x 2 cameras, batch {B} (p50/p90 ms)", "value": f"{p50:.1f} / {p90:.1f}"})
    return rows


# ------------------------------------------------------------------------------------------- train
def train_cmd(cfg_path: str, assets: dict, out: Path, steps: int, batch: int, ds: str, dry: bool,
              extra: Sequence[str] = ()) -> list[str]:
    port = str(29400 + os.getpid() % 500)
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "1", "--master_port", port,
            str(ROOT / "main_sft.py"), "--config_path", cfg_path,
            "--set", f"model.vision_encoder={assets['vision']}", f"model.text_encoder={RANDOM_TEXT_ENCODER}",
            f"dataset.datasets_config={assets['suites']}",
            f"dataset.stats_path={assets['stats']}", "dataset.val_fraction=0",
            "--output_dir", str(out), "--precomp_lang_embed", str(assets["lang"]), "--report_to", "none",
            "--train_batch_size", str(batch), "--effective_batch_size", str(batch), "--max_train_steps", str(steps),
            "--checkpointing_period", str(steps), "--sample_period", "-1", "--log_period", "1",
            "--lr_warmup_steps", "0", "--deepspeed", f"configs/{ds}.json",
            "--mixed_precision", "no" if dry else "bf16", "--dataloader_num_workers", "2", *extra]


def run_train(cmd: list[str], timeout: float) -> dict:
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:  # torchrun ends with its own banner: report the child's error line
        lines = [x for x in proc.stderr.splitlines() if x.strip() and not x.startswith(("=", "[rank"))]
        cause = next((x for x in reversed(lines) if x.startswith("error:") or "Error" in x), lines[-1] if lines else "")
        raise RuntimeError(f"main_sft.py failed (rc {proc.returncode}): {cause.strip()}")
    out = Path(cmd[cmd.index("--output_dir") + 1])
    recs = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    recs = [r for r in recs if "samples_per_s" in r][1:] or recs  # the first step includes warm-up
    med = lambda k: statistics.median(r[k] for r in recs if r.get(k) is not None) if any(r.get(k) is not None for r in recs) else float("nan")
    return {"samples_per_s": med("samples_per_s"), "peak_mem_mb": max((r.get("peak_mem_mb") or 0) for r in recs),
            "data_wait": med("data_wait_frac"), "encode": med("encode_frac"), "wall_s": time.perf_counter() - t0,
            "out": out}


def dir_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def train_rows(cfg_path, assets, work, dry, state: dict) -> list[dict]:
    steps, batch = (3, 4) if dry else (12, 8)
    variants = {"full": [], "full + grad checkpointing": ["--gradient_checkpointing"],
                "full + fused AdamW": ["--fused_adam"], "LoRA": ["--use_lora"]}
    rows = []
    for name, extra in variants.items():
        r = run_train(train_cmd(cfg_path, assets, work / f"train_{len(rows)}", steps, batch, "zero2", dry, extra),
                      timeout=BUDGETS["train"])
        state[name] = r
        rows.append({"item": f"ZeRO-2 {name}, batch {batch}", "value": f"{r['samples_per_s']:.1f} samples/s",
                     "ratio": f"peak {r['peak_mem_mb']:.0f} MB; data wait {100 * r['data_wait']:.0f}%, "
                              f"encode {100 * r['encode']:.0f}% of step time"})
    return rows


def zero3_rows(cfg_path, assets, work, dry) -> list[dict]:
    r = run_train(train_cmd(cfg_path, assets, work / "zero3", 2, 2, "zero3", dry), timeout=BUDGETS["zero3"] * 3)
    return [{"item": "ZeRO-3 two steps, batch 2", "value": f"{r['samples_per_s']:.1f} samples/s",
             "ratio": f"peak {r['peak_mem_mb']:.0f} MB"}]


def save_resume_rows(cfg_path, assets, dry, state: dict) -> list[dict]:
    rows = []
    for name, extra in (("full", []), ("LoRA", ["--use_lora"])):
        if name not in state:
            rows.append({"item": f"{name} save + resume", "status": "skipped: the train part did not run it"})
            continue
        out = state[name]["out"]
        ck = sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))[-1]
        step = int(ck.name.split("-")[1])
        cmd = train_cmd(cfg_path, assets, out, step + 1, 4 if dry else 8, "zero2", dry,
                        [*extra, "--resume_from_checkpoint", "latest"])
        t0 = time.perf_counter()
        run_train(cmd, timeout=BUDGETS["save_resume"] * 3)
        weights = ck / ("adapter_model.safetensors" if name == "LoRA" else "model.safetensors")
        rows.append({"item": f"{name} checkpoint: weights / whole folder", "value":
                     f"{weights.stat().st_size / 2**20:.1f} / {dir_mb(ck):.1f} MB",
                     "ratio": f"resume + 1 step {time.perf_counter() - t0:.0f} s"})
    return rows


# --------------------------------------------------------------------------------------------- main
def print_table(rows: list[dict]) -> None:
    print(f"\n{'part':<12} {'item':<52} {'value':<22} {'compare / detail':<52} status")
    for r in rows:
        print(f"{r['part']:<12} {r.get('item', '-')[:52]:<52} {str(r.get('value', '')):<22} "
              f"{str(r.get('ratio', ''))[:52]:<52} {r['status']}")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry", action="store_true", help="CPU, configs/tiny.yaml (what CI runs)")
    ap.add_argument("--budget_s", type=float, default=None, help="total time (default 480 s; --dry 900 s)")
    ap.add_argument("--vision_encoder", default=None, help="a local SigLIP (default: random so400m geometry)")
    ap.add_argument("--parts", nargs="+", default=list(BUDGETS), choices=list(BUDGETS))
    ap.add_argument("--repeats", type=int, default=None, help="timed calls per figure (default 20; --dry 3)")
    ap.add_argument("--out", default="outs/gpu_check")
    args = ap.parse_args(argv)
    os.chdir(ROOT)
    if not args.dry and not torch.cuda.is_available():
        print("error: no CUDA device; run with --dry for the CPU check")
        return 2
    device = torch.device("cpu" if args.dry else "cuda")
    if args.dry:
        torch.set_num_threads(1)  # the training subprocesses and dataloader workers share the cores
    dtype = torch.float32 if args.dry else torch.bfloat16
    cfg_path = "configs/tiny.yaml" if args.dry else "configs/base.yaml"
    cfg = load_config(ROOT / cfg_path)
    cfg["_path"] = cfg_path
    repeats = args.repeats or (3 if args.dry else 20)
    check = Check(args.budget_s or (900 if args.dry else 480))
    started = time.strftime("%Y%m%d-%H%M%S")
    work = Path(tempfile.mkdtemp(prefix="gpu_check_"))
    state: dict = {}
    try:
        assets = build_assets(work, cfg, args.dry, args.vision_encoder)
        run_cfg = {k: v for k, v in cfg.items() if k != "_path"}
        run_cfg["model"] = {**cfg["model"], "vision_encoder": assets["vision"]}
        parts = {
            "correctness": lambda: correctness(run_cfg, device, dtype),
            "inference": lambda: inference(run_cfg, device, dtype, assets["vision"], repeats, compile_=True),
            "train": lambda: train_rows(cfg_path, assets, work, args.dry, state),
            "zero3": lambda: zero3_rows(cfg_path, assets, work, args.dry),
            "save_resume": lambda: save_resume_rows(cfg_path, assets, args.dry, state),
        }
        for name in args.parts:
            check.part(name, parts[name])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_table(check.rows)
    out = ROOT / args.out / f"{'dry-' if args.dry else ''}{started}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    info = {"device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu", "dtype": str(dtype),
            "config": cfg_path, "torch": torch.__version__, "rows": check.rows}
    atomic_write_text(out, json.dumps(info, indent=2, default=str))
    print(f"json: {out}")
    return 0


if __name__ == "__main__":
    exit_cli(main)
