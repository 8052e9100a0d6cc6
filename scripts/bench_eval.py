"""Benchmark: evaluation throughput with 1, 2, 4 simulator processes, independent slots vs lockstep.

Rolls a tiny random RDT checkpoint (configs/tiny.yaml + tiny SigLIP / T5, built here if missing) out
through ``libero_eval.runner`` on a short budget with each ``--envs`` count, under both slot schedules
(``lockstep``: every round waits for every simulator; ``independent``: a simulator that resets or
steps does not hold the others back), same trials and steps, and counts executed policy steps and
finished episodes per wall second of the rollout loop (model loading and simulator process start-up
excluded; env creation, resets and settle steps included, as in a real evaluation). Episodes/hour
extrapolate the measured episode rate. Last line (the largest ``--envs``)::

    envs<N> lockstep <x> steps/s, independent <y> steps/s, ratio <r>

On a machine with C cores, more than about C - 1 simulator processes only share the cores.

Usage::

    python -m scripts.bench_eval                      # 1/2/4 envs, 8 trials x 40 steps, libero_goal task 1
    python -m scripts.bench_eval --envs 1 2 --trials 4 --max_steps 60 --exec_horizon 8
"""
from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path
from typing import Optional, Sequence

from configs.errors import exit_cli

REPO_ROOT = Path(__file__).resolve().parents[1]


def make_tiny_checkpoint(out_dir: str | Path, encoders_dir: str | Path, seed: int = 0,
                         overrides: Sequence[str] = ()) -> Path:
    """A random tiny RDT saved like a training checkpoint (config.json + model.safetensors +
    train_config.json + trainer_state.json) whose encoders point at `encoders_dir`.

    The zero-initialised last layer is perturbed so the predicted actions are not all zero.
    """
    import torch

    from configs.loader import load_config
    from models.loading import build_runner, save_pretrained

    out_dir = Path(out_dir)
    encoders_dir = Path(encoders_dir)
    cfg = load_config(REPO_ROOT / "configs" / "tiny.yaml", [
        f"model.vision_encoder={encoders_dir / 'siglip'}", f"model.text_encoder={encoders_dir / 't5'}", *overrides])
    torch.manual_seed(seed)
    runner = build_runner(cfg)
    with torch.no_grad():
        w = runner.model.final_layer.ffn_final.fc2.weight
        w.copy_(torch.randn_like(w) * 0.05)
    save_pretrained(runner, out_dir)
    (out_dir / "train_config.json").write_text(json.dumps({"config": cfg}, indent=2))
    (out_dir / "trainer_state.json").write_text(json.dumps({"global_step": 0}))
    return out_dir


def tiny_encoders(tmp: Path) -> Path:
    default = REPO_ROOT / "checkpoints" / "tiny_encoders"
    if (default / "siglip" / "config.json").is_file() and (default / "t5" / "config.json").is_file():
        return default
    from scripts.make_tiny_encoders import main as make_tiny_encoders

    out = tmp / "tiny_encoders"
    make_tiny_encoders(["--out", str(out)])
    return out


def run_once(ckpt: Path, out_root: Path, num_envs: int, slots: str, args) -> tuple[float, float, int]:
    """(env-steps per second, episodes per hour, steps) of the rollout loop for one configuration."""
    import numpy as np

    from libero_eval import env as lenv
    from libero_eval import runner as ev
    from policy.rdt_policy import RDTPolicy

    import torch

    torch.set_num_threads(ev.policy_threads("cpu", num_envs))
    policy = RDTPolicy.from_pretrained(ckpt, "cpu")
    suite = lenv.get_suite(args.suite)
    init_states = lenv.get_task_init_states(suite, args.task)
    instruction = lenv.task_instruction(suite, args.task, policy.instruction_source)
    policy.warmup(instruction)
    # Budgets differ between trials (as success ends real trials early), so slots fall out of step.
    jobs = [ev.Job(suite=args.suite, task_id=args.task, task_name="bench", trial=i, init_state_idx=i,
                   seed=i, instruction=instruction, init_state=init_states[i % len(init_states)],
                   max_steps=args.max_steps // 2 + (i * 7919) % (args.max_steps // 2 + 1),
                   settle_steps=lenv.NUM_STEPS_WAIT, video_stem=f"bench{i}") for i in range(args.trials)]
    steps, stats = [], {}
    ev.run_jobs(jobs, ev.ModelPlanner(policy, num_envs), num_envs, args.exec_horizon, "none", out_root,
                lambda job, act, video, error: steps.append(act.steps if act and not error else 0),
                progress=False, stats=stats, slots=slots)
    total = int(np.sum(steps))
    logging.info("num_envs %d %s: %d policy steps, %d episodes in %.1f s (policy %.1f s; + %.1f s starting the "
                 "simulator processes; mean inference %.1f ms per call)", num_envs, slots, total, len(steps),
                 stats["loop_s"], stats["plan_s"], stats["startup_s"],
                 float(np.mean(policy.infer_ms)) if policy.infer_ms else float("nan"))
    return total / stats["loop_s"], len(steps) / stats["loop_s"] * 3600, total


def main(argv: Optional[Sequence[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--suite", default="libero_goal")
    ap.add_argument("--task", type=int, default=1)
    ap.add_argument("--envs", type=int, nargs="+", default=[1, 2, 4], help="simulator process counts")
    ap.add_argument("--trials", type=int, default=8, help="trials per configuration")
    ap.add_argument("--max_steps", type=int, default=40,
                    help="largest policy-step budget of a trial (budgets vary from half of it up to it)")
    ap.add_argument("--exec_horizon", type=int, default=8)
    args = ap.parse_args(argv)
    from libero_eval import env as lenv

    lenv.check_render_backend()
    results = {}
    with tempfile.TemporaryDirectory(prefix="rdt_bench_eval_") as tmp:
        tmp = Path(tmp)
        ckpt = make_tiny_checkpoint(tmp / "ckpt", tiny_encoders(tmp))
        for n in args.envs:
            for slots in (("lockstep", "independent") if n > 1 else ("independent",)):
                results[n, slots] = run_once(ckpt, tmp / f"out{n}{slots}", n, slots, args)
    print(f"{'envs':>4} {'slots':>12} {'steps/s':>8} {'episodes/h':>10}")
    for (n, slots), (rate, eph, _) in results.items():
        print(f"{n:>4} {slots:>12} {rate:>8.2f} {eph:>10.0f}")
    n = max(args.envs)
    if n > 1:
        lock, free = results[n, "lockstep"][0], results[n, "independent"][0]
        print(f"envs{n} lockstep {lock:.2f} steps/s, independent {free:.2f} steps/s, ratio {free / lock:.2f}")
    return 0


if __name__ == "__main__":
    exit_cli(main)
