"""What bf16 mixed precision does to the actions that reach the robot.

Every step of the given LIBERO files (by default the LIBERO-made fixture file and a demo freshly
rolled out in the simulator) is encoded as the dataset encodes it, then sent through

* the training-target path: ``policy.batch.action_targets``, exactly what ``main_sft.py`` feeds the
  loss under ``--mixed_precision bf16``;
* the sampler output path: ``RDTRunner.conditional_sample`` of a bf16 runner (weights, conditions
  and network input in bf16) whose network is replaced by an oracle that returns the true chunk in
  the dtype the real network's output layer produces, so only the sampler's and output head's
  arithmetic is measured (not how well a model learned);

and decoded back to 7-d LIBERO actions against the recorded pose before each action. The error is
the max |decoded - recorded| over all steps and the 7 dims, in action units (1 unit = 5 cm / 0.5 rad;
the gripper in its [-1, 1] units). A world-frame position of ~1 m rounded to bf16 is off by up to
4 mm = 0.08 units.

    python -m scripts.check_precision                  # fixture file + one fresh simulator demo
    python -m scripts.check_precision --no_generate    # fixture file only (no simulator)
    python -m scripts.check_precision data/datasets/libero_goal/*.hdf5

Last line: ``bf16 max decode error <x> action units (abs_goal), <y> (delta)``.
"""
from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from configs.errors import exit_cli
from configs.loader import load_config
from data import libero_hdf5 as lh
from policy.libero_mapping import ENCODINGS, Pose, decode_actions, encode_actions
from models.loading import build_runner
from policy.batch import action_targets

log = logging.getLogger("check_precision")

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURE = REPO_ROOT / "tests" / "fixtures" / "libero_format" / "put_the_bowl_on_the_stove_demo.hdf5"
BF16 = torch.bfloat16


def demo_steps(path: Path) -> Iterator[tuple[np.ndarray, Pose, object]]:
    """(actions (N, 7), pose before each action, OSC scale) of every demo, for the steps a sample can
    start at (raw layout: the pose before actions[t] is obs[t-1], so t >= 1)."""
    with lh.open_file(path) as f:
        layout = lh.detect_layout(f, path)
        scale = lh.read_osc_scale(f, path)
        off = lh.obs_offset(layout)
        for demo in lh.demo_keys(f, path):
            low = lh.read_demo_lowdim(f, path, demo)
            t = np.arange(off, len(low))
            yield low.actions[t], Pose(low.ee_pos[t - off], low.ee_ori[t - off]), scale


class OracleNetwork(torch.nn.Module):
    """Stands in for the DiT: runs the real network (so its output dtype is the real one) and returns
    the true chunk in that dtype."""

    def __init__(self, real: torch.nn.Module, chunks: torch.Tensor):
        super().__init__()
        self.real, self.chunks = real, chunks

    def precompute_condition_kv(self, *args):
        return self.real.precompute_condition_kv(*args)

    def forward(self, *args, **kwargs) -> torch.Tensor:
        out = self.real(*args, **kwargs)
        return self.chunks.to(out.dtype)


def sampler_path(encoded: np.ndarray, config: str = "configs/tiny.yaml") -> np.ndarray:
    """(N, 128) float32 -> what a bf16 runner's sampler returns for them, (N, 128) float64."""
    cfg = load_config(config)
    torch.manual_seed(0)
    runner = build_runner(cfg).to(BF16).eval()
    H, D = runner.pred_horizon, runner.action_dim
    hidden = runner.model.hidden_size
    n = len(encoded)
    padded = np.concatenate([encoded, np.repeat(encoded[-1:], (-n) % H, axis=0)])
    chunks = torch.from_numpy(padded).float().reshape(-1, H, D)
    B = chunks.shape[0]
    runner.model = OracleNetwork(runner.model, chunks)
    mask = (chunks.abs().amax(dim=1, keepdim=True) > 0).float()  # (B, 1, D): the used slots
    g = torch.Generator().manual_seed(0)
    out = runner.conditional_sample(
        lang_cond=torch.randn(B, 4, hidden, generator=g).to(BF16),
        lang_attn_mask=torch.ones(B, 4, dtype=torch.bool),
        img_cond=torch.randn(B, runner.model.real.img_cond_len, hidden, generator=g).to(BF16),
        state_traj=torch.randn(B, 1, hidden, generator=g).to(BF16),
        action_mask=mask.to(BF16), ctrl_freqs=torch.full((B,), 20.0).to(BF16),
        generator=g)
    return out.reshape(-1, D)[:n].double().numpy()


def target_path(encoded: np.ndarray) -> np.ndarray:
    """(N, 128) float32 -> the training target main_sft.py builds from them, (N, 128) float64."""
    return action_targets({"actions": torch.from_numpy(encoded)}, "cpu").double().numpy()


def decode_error(vec: np.ndarray, actions: np.ndarray, pose: Pose, encoding: str, scale) -> float:
    decoded = decode_actions(vec, pose, encoding, scale)
    return float(np.abs(decoded - actions).max())


def check_files(files: Sequence[Path]) -> list[dict]:
    rows = []
    for path in files:
        for actions, pose, scale in demo_steps(path):
            for encoding in ENCODINGS:
                # float32, as LiberoDataset hands samples to the collate function
                encoded = encode_actions(actions, pose, encoding, scale).astype(np.float32)
                rows.append({
                    "file": path.name, "encoding": encoding, "steps": len(actions),
                    "target": decode_error(target_path(encoded), actions, pose, encoding, scale),
                    "sampler": decode_error(sampler_path(encoded), actions, pose, encoding, scale),
                })
    return rows


def summary_line(rows: list[dict]) -> str:
    worst = {enc: max(max(r["target"], r["sampler"]) for r in rows if r["encoding"] == enc) for enc in ENCODINGS}
    return f"bf16 max decode error {worst['abs_goal']:.2e} action units (abs_goal), {worst['delta']:.2e} (delta)"


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*", type=Path, help="LIBERO HDF5 files (default: the fixture + a simulator demo)")
    ap.add_argument("--no_fixture", action="store_true", help="skip the LIBERO-made fixture file")
    ap.add_argument("--no_generate", action="store_true", help="do not roll out a fresh simulator demo")
    args = ap.parse_args(argv)

    files = list(args.files) + ([] if args.no_fixture else [FIXTURE])
    with tempfile.TemporaryDirectory(prefix="rdt_precision_") as tmp:
        if not args.no_generate:
            from libero_eval.demos.motion import make_dataset

            files += make_dataset("libero_goal", [1], 1, tmp, fmt="raw", progress=False)
        if not files:
            ap.error("nothing to check")
        try:
            rows = check_files(files)
        except lh.LiberoDataError as exc:
            log.error("%s", exc)
            return 2
    print(f"{'file':<44} {'encoding':<9} {'steps':>6} {'target err':>11} {'sampler err':>12}")
    for r in rows:
        print(f"{r['file'][:44]:<44} {r['encoding']:<9} {r['steps']:>6} {r['target']:>11.2e} {r['sampler']:>12.2e}")
    print(summary_line(rows))
    return 0


if __name__ == "__main__":
    exit_cli(main)
