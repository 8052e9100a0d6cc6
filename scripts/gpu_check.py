"""One prepared, unattended check of RDT-1B on a GPU node: correctness, inference and training
figures, each measured side by side in the same run. No downloads: random-init RDT-1B from
configs/base.yaml and SigLIP-so400m geometry with random weights (or the real encoder with
``--vision_encoder``), precomputed random T5-XXL-sized language embeddings, the repo's LIBERO-format
fixture file as training data.

    bash scripts/gpu_check.sh                 # GPU: ~8 min, table + outs/gpu_check/<time>.json
    bash scripts/gpu_check.sh --dry           # CPU, tiny config: the same code paths (CI)
    bash scripts/gpu_check.sh --cpu_full_size # CPU, the released geometry: what can die on size, before a GPU

``--cpu_full_size`` runs the parts that need no CUDA at RDT-1B's geometry (configs/base.yaml, SigLIP
so400m, 4096-d language tokens) in fp32 on the CPU with budgets that finish: batch 1, no compile, one
LoRA step (full fine-tuning needs ~16 bytes per parameter of optimiser state: it does not fit 24 GB),
the LoRA checkpoint resumed, merged and reloaded, and the released checkpoint's layout (config.json +
pytorch_model.bin with the 618 tensors of tests/fixtures/rdt1b_state_dict_keys.json) loaded strictly.
Every part reports its wall time and peak memory (PSS of this process and its children).

Parts (each has a time budget and is skipped with a printed reason when the total budget runs out):
  correctness  parity fixtures in fp32 on the device (atol 1e-5); plain vs cached-K/V predict_action
               in the run's dtype; the language padded to max_lang_cond_len (1024 at 1B), masked, vs
               unpadded; bf16 decode error of the fixture's actions (check_precision)
  inference    one 64-action chunk, batch 1 and 8: plain vs cached K/V vs cached + torch.compile
               (p50/p90 ms); SigLIP on 2 frames x 2 cameras; the SDPA kernels that run
  train        main_sft.py through DeepSpeed ZeRO-2, one process: samples/s, peak memory, share of
               step time waiting for data and encoding images -- full, full + gradient
               checkpointing, full + fused AdamW, LoRA (all with precomputed language embeddings)
  zero3        two ZeRO-3 steps
  save_resume  checkpoint sizes (full, LoRA) and one resumed step from each; the LoRA checkpoint
               merged, reloaded and compared with the adapter model
  layout       (--cpu_full_size) the released checkpoint layout loads with the manifest's keys and shapes
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
import threading
import traceback
from dataclasses import dataclass, field
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
MANIFEST = ROOT / "tests" / "fixtures" / "rdt1b_state_dict_keys.json"  # the released runner's 618 tensors
# (budget s) per part on the GPU; --dry runs the tiny config on the CPU with the same parts
BUDGETS = {"correctness": 60, "inference": 120, "train": 240, "zero3": 60, "save_resume": 60}
FULL_TRAIN_BYTES_PER_PARAM = 16  # fp32 weights + gradients + AdamW's two moments


@dataclass(frozen=True)
class Mode:
    """Where and at what size the check runs: the GPU node, the CPU at the tiny size (CI), or the
    CPU at the released size (no CUDA-only parts, budgets that finish on 2 cores)."""

    name: str
    config: str
    device: str
    budgets: dict
    repeats: int
    batches: tuple = (1, 8)  # inference batch sizes
    compile: bool = True
    warmup: bool = True  # one untimed call before the timed ones
    sdpa_probe: bool = True
    train_variants: tuple = ("full", "full + grad checkpointing", "full + fused AdamW", "LoRA")
    train_steps: int = 12
    train_batch: int = 8
    parts: tuple = tuple(BUDGETS)
    dtype: torch.dtype = field(default=torch.bfloat16)

    @property
    def cpu(self) -> bool:
        return self.device == "cpu"


MODES = {
    "gpu": Mode("gpu", "configs/base.yaml", "cuda", BUDGETS, repeats=20),
    "dry": Mode("dry", "configs/tiny.yaml", "cpu", BUDGETS, repeats=3, train_steps=3, train_batch=4,
                dtype=torch.float32),
    "cpu_full_size": Mode(
        "cpu_full_size", "configs/base.yaml", "cpu",
        {"correctness": 900, "inference": 900, "train": 1500, "zero3": 0, "save_resume": 1800, "layout": 600},
        repeats=1, batches=(1,), compile=False, warmup=False, sdpa_probe=False, train_variants=("LoRA",),
        train_steps=1, train_batch=1, parts=("correctness", "inference", "train", "zero3", "save_resume", "layout"),
        dtype=torch.float32),
}
TRAIN_VARIANTS = {"full": [], "full + grad checkpointing": ["--gradient_checkpointing"],
                  "full + fused AdamW": ["--fused_adam"], "LoRA": ["--use_lora"]}


class PeakMemory:
    """Peak memory of this process plus its children, sampled while a part runs: the sum of their
    proportional set sizes (PSS: a page shared by n processes counts 1/n in each), so pages a forked
    DataLoader worker shares with its parent are not counted twice, as a sum of RSS would (26 GB
    "peak" on a 23 GB machine). RSS where PSS cannot be read."""

    def __init__(self, period_s: float = 0.25):
        import psutil

        self.proc, self.period, self.peak = psutil.Process(), period_s, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        import psutil

        def footprint(p) -> int:
            try:
                return p.memory_full_info().pss
            except (AttributeError, psutil.AccessDenied):
                return p.memory_info().rss

        try:
            total = footprint(self.proc)
            for child in self.proc.children(recursive=True):
                try:
                    total += footprint(child)
                except psutil.Error:  # a child that just ended
                    pass
        except psutil.Error:
            return
        self.peak = max(self.peak, total)

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.sample()

    def __enter__(self) -> "PeakMemory":
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def release_memory() -> None:
    """Give a finished part's memory back before the next one starts: without it the process kept
    ~4-6 GB of freed 1B-size tensors in glibc's heap through the training part, whose subprocess then
    needed ~11 GB more (measured at full size on the CPU: 3.9 GB held during the empty ZeRO-3 part)."""
    import gc

    from utils import allocator

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    allocator.trim()


class Check:
    """Runs the parts in order within a total budget; collects their rows, and each part's wall
    time and peak memory; after each part the memory it freed is returned to the system."""

    def __init__(self, total_s: float, budgets: dict):
        self.deadline = time.perf_counter() + total_s
        self.budgets = budgets
        self.rows: list[dict] = []

    def part(self, name: str, fn: Callable[[], list[dict]]) -> None:
        left = self.deadline - time.perf_counter()
        if left < self.budgets[name] * 0.5:
            self.rows.append({"part": name, "item": "-",
                              "status": f"skipped: {left:.0f} s left, needs ~{self.budgets[name]} s"})
            return
        t0 = time.perf_counter()
        with PeakMemory() as mem:
            try:
                rows = fn()
                for r in rows:
                    r.setdefault("status", "ok")
                self.rows += [{"part": name, **r} for r in rows]
            except Exception as e:  # a failed part is a row, the others still run
                self.rows.append({"part": name, "item": "-", "status": f"error: {type(e).__name__}: {e}"[:300]})
                traceback.print_exc()
        dt = time.perf_counter() - t0
        release_memory()
        self.rows.append({"part": name, "item": "part wall time / peak memory", "value": f"{dt:.0f} s",
                          "ratio": f"peak {mem.peak / 2**30:.1f} GB (PSS, process + children)", "status": "ok",
                          "wall_s": round(dt, 1), "peak_pss_gb": round(mem.peak / 2**30, 2)})
        print(f"[gpu_check] {name}: {dt:.0f} s, peak memory {mem.peak / 2**30:.1f} GB (PSS)", flush=True)


# ------------------------------------------------------------------------------------------- setup
# The language embeddings are random stand-ins: the config names them so, and training, which checks
# that a store was made by model.text_encoder, accepts them (a cache miss would fail loudly).
RANDOM_TEXT_ENCODER = "random (gpu_check)"


def build_assets(work: Path, cfg: dict, dry: bool, vision_encoder: str | None) -> dict:
    """Encoders, language embeddings, a datasets table over the fixture file, its statistics.
    ``dry``: the tiny config's tiny encoders; otherwise SigLIP so400m's geometry (random)."""
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
def correctness(cfg: dict, device: torch.device, dtype: torch.dtype, batch: int = 2) -> list[dict]:
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
    inputs = chunk_inputs(runner, batch, device, dtype)
    times = []
    outs = []
    for cached in (False, True):
        t0 = time.perf_counter()
        with torch.no_grad():
            outs.append(runner.predict_action(**inputs, use_cond_cache=cached))
        times.append(time.perf_counter() - t0)
    diff = (outs[0] - outs[1]).abs().max().item()
    tol = 1e-4 if dtype == torch.float32 else 2e-2
    rows.append({"item": f"plain vs cached predict_action ({str(dtype)[6:]}, batch {batch})", "value": f"{diff:.1e}",
                 "ratio": f"plain {times[0]:.1f} s, cached {times[1]:.1f} s",
                 "status": "ok" if diff <= tol else f"FAIL (tol {tol})"})
    # The language limit: the same instruction padded to max_lang_cond_len tokens (T5-XXL width), the
    # padding masked out, must give the same chunk as the unpadded tokens.
    L, limit = inputs["lang_tokens"].shape[1], runner.init_kwargs["max_lang_cond_len"]
    pad = lambda t, fill: torch.cat([t, fill.expand(t.shape[0], limit - L, *t.shape[2:])], dim=1)
    padded = dict(inputs, lang_tokens=pad(inputs["lang_tokens"], torch.randn(1, 1, inputs["lang_tokens"].shape[2]).to(
        inputs["lang_tokens"])), lang_attn_mask=pad(inputs["lang_attn_mask"], torch.zeros(1, 1, dtype=torch.bool,
                                                                                         device=device)))
    t0 = time.perf_counter()
    with torch.no_grad():
        diff = (runner.predict_action(**padded, use_cond_cache=True) - outs[1]).abs().max().item()
    rows.append({"item": f"language padded to {limit} tokens ({L} valid) vs {L}, cached", "value": f"{diff:.1e}",
                 "ratio": f"{time.perf_counter() - t0:.1f} s", "status": "ok" if diff <= tol else f"FAIL (tol {tol})"})
    del runner, outs
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


def inference(cfg: dict, device, dtype, vision: str, mode: "Mode") -> list[dict]:
    from models.loading import build_runner
    from models.multimodal_encoder.siglip_encoder import SiglipVisionTower

    runner = build_runner(cfg).to(device=device, dtype=dtype).eval()
    torch.nn.init.normal_(runner.model.final_layer.ffn_final.fc2.weight, std=0.02)
    rows, repeats = [], mode.repeats
    for B in mode.batches:
        inputs = chunk_inputs(runner, B, device, dtype)
        calls = {"plain": lambda: runner.predict_action(**inputs, use_cond_cache=False),
                 "cached": lambda: runner.predict_action(**inputs, use_cond_cache=True)}
        if mode.warmup:
            for f in calls.values():
                f()
        res = {k: timings(f, repeats, device) for k, f in calls.items()}
        if mode.compile:
            # --dry: dynamo's graph capture without inductor's C++ build (minutes on a CPU)
            backend = "inductor" if device.type == "cuda" else "aot_eager"
            runner.compile_for_inference(backend=backend)  # inductor: frozen weights
            try:
                t0 = time.perf_counter()
                runner.predict_action(**inputs)
                warm = time.perf_counter() - t0
                res["cached+compile"] = timings(lambda: runner.predict_action(**inputs), repeats, device)
                rows.append({"item": f"torch.compile warm-up, batch {B}", "value": f"{warm:.1f} s"})
            finally:
                runner.compile_for_inference(False)
        base = res["plain"][0]
        for k, (p50, p90) in res.items():
            rows.append({"item": f"chunk batch {B} {k} (p50/p90 ms)", "value": f"{p50:.1f} / {p90:.1f}",
                         "ratio": f"{base / p50:.2f}x vs plain"})
        if B == 1 and mode.sdpa_probe:
            rows.append({"item": "SDPA kernels that run", "value": sdpa_kernels(runner, inputs)})
    del runner
    tower = SiglipVisionTower(vision, dtype=dtype).to(device)
    for B in mode.batches:
        size = 128
        images = torch.randint(0, 256, (B, 6, size, size, 3), dtype=torch.uint8)
        slots = torch.tensor([True, True, False] * 2).expand(B, -1)
        if mode.warmup:
            tower.encode_slots(images, slots)
        p50, p90 = timings(lambda: tower.encode_slots(images, slots), repeats, device)
        rows.append({"item": f"SigLIP 2 frames x 2 cameras, batch {B} (p50/p90 ms)", "value": f"{p50:.1f} / {p90:.1f}"})
    return rows


# ------------------------------------------------------------------------------------------- train
def train_cmd(cfg_path: str, assets: dict, out: Path, steps: int, batch: int, ds: str, cpu: bool,
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
            "--mixed_precision", "no" if cpu else "bf16", "--dataloader_num_workers", "2", *extra]


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
    return {"samples_per_s": med("samples_per_s"), "grad_norm": max(r.get("grad_norm") or 0.0 for r in recs), "peak_mem_mb": max((r.get("peak_mem_mb") or 0) for r in recs),
            "data_wait": med("data_wait_frac"), "encode": med("encode_frac"), "wall_s": time.perf_counter() - t0,
            "out": out}


def dir_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def lora_base(mode: Mode, work: Path) -> Path:
    """Base weights for the LoRA runs: random, with a non-zero output layer (a random RDT's is zero, so
    adapters on it get no gradient, and main_sft.py refuses LoRA without a base)."""
    from models.loading import build_runner, save_pretrained

    out = work / "lora_base"
    if not (out / "config.json").is_file():
        torch.manual_seed(0)
        runner = build_runner(load_config(ROOT / mode.config))
        torch.nn.init.normal_(runner.model.final_layer.ffn_final.fc2.weight, std=0.02)
        save_pretrained(runner, out)
    return out


def variant_args(name: str, mode: Mode, work: Path) -> list[str]:
    extra = list(TRAIN_VARIANTS[name])
    return extra + ["--pretrained_model_name_or_path", str(lora_base(mode, work))] if name == "LoRA" else extra


def train_rows(mode: Mode, assets, work, state: dict) -> list[dict]:
    steps, batch = mode.train_steps, mode.train_batch
    rows = []
    for name in mode.train_variants:
        cmd = train_cmd(mode.config, assets, work / f"train_{len(rows)}", steps, batch, "zero2", mode.cpu,
                        variant_args(name, mode, work))
        r = run_train(cmd, timeout=mode.budgets["train"])
        state[name] = r
        rate = r["samples_per_s"]  # at the released size on the CPU a step takes minutes: s/step then
        value = f"{rate:.1f} samples/s" if rate >= 0.1 else f"{batch / max(rate, 1e-9):.0f} s/step"
        rows.append({"item": f"ZeRO-2 {name}, batch {batch}", "value": value,
                     "status": "ok" if r["grad_norm"] > 0 else "FAIL (zero gradient: nothing trains)",
                     "ratio": f"peak {r['peak_mem_mb']:.0f} MB; data wait {100 * r['data_wait']:.0f}%, "
                              f"encode {100 * r['encode']:.0f}% of step time"})
    return rows


def zero3_rows(mode: Mode, assets, work) -> list[dict]:
    if mode.name == "cpu_full_size":
        n = json.loads(MANIFEST.read_text())["num_parameters"]
        need = n * FULL_TRAIN_BYTES_PER_PARAM / 2**30
        return [{"item": "ZeRO-3 two steps (full fine-tuning)", "value": f"needs >= {need:.0f} GB",
                 "status": f"skipped: {FULL_TRAIN_BYTES_PER_PARAM} B/parameter of fp32 weights, gradients and "
                           f"AdamW moments for {n / 1e9:.2f} B parameters, before activations"}]
    r = run_train(train_cmd(mode.config, assets, work / "zero3", 2, 2, "zero3", mode.cpu),
                  timeout=mode.budgets["zero3"] * 3)
    return [{"item": "ZeRO-3 two steps, batch 2", "value": f"{r['samples_per_s']:.1f} samples/s",
             "ratio": f"peak {r['peak_mem_mb']:.0f} MB"}]


def save_resume_rows(mode: Mode, assets, work, state: dict) -> list[dict]:
    rows = []
    for name in ("full", "LoRA"):
        if name not in state:
            if name in mode.train_variants:
                rows.append({"item": f"{name} save + resume", "status": "skipped: the train part did not run it"})
            continue
        out = state[name]["out"]
        ck = sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))[-1]
        step = int(ck.name.split("-")[1])
        cmd = train_cmd(mode.config, assets, out, step + 1, mode.train_batch, "zero2", mode.cpu,
                        [*variant_args(name, mode, work), "--resume_from_checkpoint", "latest"])
        t0 = time.perf_counter()
        run_train(cmd, timeout=mode.budgets["save_resume"] * 3)
        weights = ck / ("adapter_model.safetensors" if name == "LoRA" else "model.safetensors")
        rows.append({"item": f"{name} checkpoint: weights / whole folder", "value":
                     f"{weights.stat().st_size / 2**20:.1f} / {dir_mb(ck):.1f} MB",
                     "ratio": f"resume + 1 step {time.perf_counter() - t0:.0f} s"})
        if name == "LoRA":
            rows.append(merged_lora_row(ck, work / "merged", torch.device(mode.device)))
    return rows


def merged_lora_row(ck: Path, out: Path, device: torch.device) -> dict:
    """The LoRA checkpoint merged (scripts/merge_lora.py's path), saved, reloaded as a plain
    checkpoint, and compared with the adapter model on one chunk."""
    from models.loading import load_runner, save_pretrained
    from models.lora import load_lora_runner

    t0 = time.perf_counter()
    adapter = load_lora_runner(ck, merge=False).to(device).eval()
    lora_b = max(p.abs().max().item() for n, p in adapter.named_parameters() if "lora_B" in n)
    inputs = chunk_inputs(adapter.get_base_model(), 1, device, torch.float32)
    with torch.no_grad():
        want = adapter.predict_action(**inputs)
    save_pretrained(load_lora_runner(ck, merge=True), out)
    del adapter
    merged = load_runner(out).to(device).eval()
    with torch.no_grad():
        diff = (merged.predict_action(**inputs) - want).abs().max().item()
    tol = 1e-3
    return {"item": "LoRA merged + reloaded vs adapter model, one chunk", "value": f"{diff:.1e}",
            "ratio": f"max |lora_B| {lora_b:.1e}; {dir_mb(out):.0f} MB; {time.perf_counter() - t0:.0f} s",
            "status": "ok" if diff <= tol and lora_b > 0 else f"FAIL (tol {tol}, lora_B must be trained)"}


def layout_rows(cfg: dict, work: Path) -> list[dict]:
    """A checkpoint in the released layout (the official flat config.json without the later ``norm``
    field + pytorch_model.bin holding the manifest's 618 tensors in their dtypes) loads strictly, at
    the manifest's shapes, with the norm the released weights were trained with."""
    from models.loading import flat_config, load_runner, runner_kwargs_from_config

    manifest = json.loads(MANIFEST.read_text())
    flat = flat_config(runner_kwargs_from_config(cfg))
    flat["rdt"] = {k: v for k, v in flat["rdt"].items() if k != "norm"}
    released = work / "released"
    released.mkdir(exist_ok=True)
    (released / "config.json").write_text(json.dumps(flat, indent=2))
    g = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    sd = {k: (torch.randn(shape, generator=g) * 0.02).to(getattr(torch, dt)) for k, (shape, dt) in manifest["keys"].items()}
    torch.save(sd, released / "pytorch_model.bin")
    probe = next(iter(sd))
    want = sd[probe].float()
    del sd
    runner = load_runner(released, {k: v for k, v in cfg.items() if k != "_path"})
    got = runner.state_dict()
    shapes_ok = list(got) == list(manifest["keys"]) and all(
        list(got[k].shape) == shape for k, (shape, _) in manifest["keys"].items())
    same = torch.equal(got[probe].float(), want) and runner.init_kwargs['config']['rdt']['norm'] == 'release_var'
    n = sum(v.numel() for v in got.values())
    return [{"item": "released layout (config.json + pytorch_model.bin) loads",
             "value": f"{len(got)} tensors, {n / 1e9:.3f} B", "ratio": f"norm {runner.init_kwargs['config']['rdt']['norm']}; "
             f"{(released / 'pytorch_model.bin').stat().st_size / 2**30:.1f} GB; {time.perf_counter() - t0:.0f} s",
             "status": "ok" if shapes_ok and same and len(got) == manifest["num_tensors"]
             and n == manifest["num_parameters"] else "FAIL (keys, shapes or values differ from the manifest)"}]


# --------------------------------------------------------------------------------------------- main
def print_table(rows: list[dict]) -> None:
    print(f"\n{'part':<12} {'item':<52} {'value':<22} {'compare / detail':<52} status")
    for r in rows:
        print(f"{r['part']:<12} {r.get('item', '-')[:52]:<52} {str(r.get('value', '')):<22} "
              f"{str(r.get('ratio', ''))[:52]:<52} {r['status']}")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--dry", action="store_true", help="CPU, configs/tiny.yaml (what CI runs)")
    size.add_argument("--cpu_full_size", action="store_true",
                      help="CPU, the released RDT-1B geometry; the parts that need no CUDA (~1 h on 2 cores)")
    ap.add_argument("--budget_s", type=float, default=None,
                    help="total time (default 480 s; --dry 900 s; --cpu_full_size: the sum of its part budgets)")
    ap.add_argument("--vision_encoder", default=None, help="a local SigLIP (default: random so400m geometry)")
    ap.add_argument("--parts", nargs="+", default=None, help=f"a subset of the mode's parts ({', '.join(MODES['cpu_full_size'].parts)})")
    ap.add_argument("--repeats", type=int, default=None, help="timed calls per figure (default 20; --dry 3; --cpu_full_size 1)")
    ap.add_argument("--out", default="outs/gpu_check")
    args = ap.parse_args(argv)
    mode = MODES["dry" if args.dry else "cpu_full_size" if args.cpu_full_size else "gpu"]
    if args.repeats:
        mode = Mode(**{**mode.__dict__, "repeats": args.repeats})
    parts_wanted = args.parts or list(mode.parts)
    unknown = [p for p in parts_wanted if p not in mode.parts]
    if unknown:
        print(f"error: --parts {' '.join(unknown)}: not a part of the {mode.name} check ({', '.join(mode.parts)})",
              file=sys.stderr)
        return 2
    os.chdir(ROOT)
    if mode.device == "cuda" and not torch.cuda.is_available():
        print("error: no CUDA device; run with --dry (tiny) or --cpu_full_size (released size) on the CPU",
              file=sys.stderr)
        return 2
    device = torch.device(mode.device)
    if args.dry:
        torch.set_num_threads(1)  # the training subprocesses and dataloader workers share the cores
    dtype = mode.dtype
    cfg = load_config(ROOT / mode.config)
    cfg["_path"] = mode.config
    total = args.budget_s or {"dry": 900, "gpu": 480}.get(mode.name) or sum(mode.budgets[p] for p in parts_wanted)
    check = Check(total, mode.budgets)
    started = time.strftime("%Y%m%d-%H%M%S")
    work = Path(tempfile.mkdtemp(prefix="gpu_check_"))
    state: dict = {}
    try:
        assets = build_assets(work, cfg, args.dry, args.vision_encoder)
        run_cfg = {k: v for k, v in cfg.items() if k != "_path"}
        run_cfg["model"] = {**cfg["model"], "vision_encoder": assets["vision"]}
        parts = {
            "correctness": lambda: correctness(run_cfg, device, dtype, batch=min(mode.batches[-1], 2)),
            "inference": lambda: inference(run_cfg, device, dtype, assets["vision"], mode),
            "train": lambda: train_rows(mode, assets, work, state),
            "zero3": lambda: zero3_rows(mode, assets, work),
            "save_resume": lambda: save_resume_rows(mode, assets, work, state),
            "layout": lambda: layout_rows(run_cfg, work),
        }
        for name in parts_wanted:
            check.part(name, parts[name])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_table(check.rows)
    out = ROOT / args.out / f"{'' if mode.name == 'gpu' else mode.name.replace('_', '-') + '-'}{started}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    info = {"device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu", "mode": mode.name,
            "dtype": str(dtype), "config": mode.config, "torch": torch.__version__, "rows": check.rows}
    atomic_write_text(out, json.dumps(info, indent=2, default=str))
    print(f"json: {out}")
    return 0


if __name__ == "__main__":
    exit_cli(main)
