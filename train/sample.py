"""Validation by sampling: the masked action MSE and relative l2 error of full 5-step DPM samples
(official ``overall_avg_sample_mse`` / ``_l2err``, also per suite), on training episodes and on
held-out episodes, split across processes, plus a picture of predicted vs ground-truth chunks.

The batches are fixed (the first ``num_batches * batch_size`` samples of a fixed permutation) and the
initial noise comes from a seeded generator, so the metric is comparable across steps and runs.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from configs.state_vec import STATE_VEC_LEN
from policy.batch import BATCH, collate
from policy.libero_mapping import ACTION_SLOT_GROUPS

log = logging.getLogger(__name__)


def fixed_subset(dataset, num_samples: int, seed: int = 0, rank: int = 0, world_size: int = 1) -> Subset:
    """The first `num_samples` of a fixed permutation; with several processes, this rank's equal share
    (the count is rounded down to a multiple of the process count, so every rank runs as many
    batches -- ZeRO-3 gathers parameters collectively in every forward)."""
    num_samples = min(num_samples, len(dataset))
    num_samples -= num_samples % world_size
    perm = np.random.default_rng(seed).permutation(len(dataset))[:num_samples]
    return Subset(dataset, sorted(perm.tolist())[rank::world_size])


@torch.no_grad()
def sample_mse(policy, dataset, batch_size: int, num_batches: int, seed: int = 0,
               prefix: str = "", num_workers: int = 0, rank: int = 0, world_size: int = 1,
               reduce=None) -> tuple[dict, Optional[dict]]:
    """Returns ({f"{prefix}overall_avg_sample_mse": x, f"{prefix}overall_avg_sample_l2err": y,
    f"{prefix}{suite}_sample_mse": ..., f"{prefix}{suite}_sample_l2err": ...}, one example batch
    {pred, gt, mask} for plotting). ``policy``: an ``RDTPolicy`` (its ``sample``).

    mse: masked mean of (pred - gt)^2; l2err: masked mean of |pred - gt| / (episode action RMS + 1e-3)
    (the official relative error). Also ``{prefix}overall_avg_{eef_position,eef_rot6d,gripper}_rmse``:
    each quantity's masked RMSE in its own units, since the gripper's 0-1 range dominates the MSE and
    hides centimetre position errors. With several processes each rank samples its share of the fixed
    subset and `reduce` (a sum over processes, e.g. ``accelerator.reduce``) combines the sums.
    """
    was_training = policy.training
    policy.train(False)
    subset = fixed_subset(dataset, batch_size * num_batches, seed, rank, world_size)
    loader = DataLoader(subset, batch_size=batch_size, shuffle=False, collate_fn=collate, num_workers=num_workers)
    gen = torch.Generator(device=policy.device).manual_seed(seed + rank)
    keys = ["overall_avg", *dataset.suite_names]
    totals = torch.zeros(len(keys), 3, dtype=torch.float64)  # sum sq err, sum rel err, masked count
    # per action slot, all suites: sum sq err, masked count (grouped by quantity at the end)
    slot_totals = torch.zeros(2, STATE_VEC_LEN, dtype=torch.float64)
    example = None
    for batch in loader:
        pred = policy.sample(batch, generator=gen).float()
        gt = batch[BATCH.actions].to(pred.device)
        mask = (batch[BATCH.action_elem_mask].unsqueeze(1) * batch[BATCH.action_valid].unsqueeze(-1).float()).to(pred.device)
        diff = (pred - gt).abs() * mask
        rel = diff / (batch[BATCH.action_norm].to(pred.device).unsqueeze(1) + 1e-3)
        per = torch.stack([(diff ** 2).sum((1, 2)), rel.sum((1, 2)), mask.sum((1, 2))], 1).double().cpu()
        slot_totals += torch.stack([(diff.double() ** 2).sum((0, 1)), mask.double().sum((0, 1))]).cpu()
        for i, suite in enumerate(batch[BATCH.suites]):
            totals[0] += per[i]
            totals[keys.index(suite)] += per[i]
        if example is None:
            example = {"pred": pred.cpu(), "gt": gt.cpu(), "mask": mask.cpu()}
    policy.train(was_training)
    if reduce is not None:
        packed = reduce(torch.cat([totals.flatten(), slot_totals.flatten()]).to(policy.device)).cpu()
        totals, slot_totals = packed[:totals.numel()].view_as(totals), packed[totals.numel():].view_as(slot_totals)
    metrics = {}
    for key, (sq, rel, count) in zip(keys, totals.tolist()):
        if count > 0:
            metrics[f"{prefix}{key}_sample_mse"] = sq / count
            metrics[f"{prefix}{key}_sample_l2err"] = rel / count
    for name, slots in ACTION_SLOT_GROUPS.items():
        sq, count = slot_totals[:, slots].sum(1).tolist()
        if count > 0:  # the whole-chunk RMSE of one quantity, in its own units (metres for the position)
            metrics[f"{prefix}overall_avg_{name}_rmse"] = (sq / count) ** 0.5
    return metrics, example


def plot_chunks(example: dict, path: Path, step: int, max_samples: int = 3,
                slots=((30, 31, 32), (33, 34, 35, 36, 37, 38), (10,)),
                titles=("eef position (m)", "6D rotation", "gripper open")) -> Path:
    """Predicted (dashed) vs ground-truth (solid) action chunks over the horizon, a row per sample."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = min(max_samples, example["pred"].shape[0])
    fig, axes = plt.subplots(n, len(slots), figsize=(4 * len(slots), 2.6 * n), squeeze=False)
    horizon = np.arange(example["pred"].shape[1])
    for r in range(n):
        for c, (dims, title) in enumerate(zip(slots, titles)):
            ax = axes[r][c]
            for j, d in enumerate(dims):
                colour = f"C{j}"
                ax.plot(horizon, example["gt"][r, :, d].numpy(), color=colour, lw=1.5)
                ax.plot(horizon, example["pred"][r, :, d].numpy(), color=colour, lw=1.2, ls="--")
            if r == 0:
                ax.set_title(title)
            ax.set_xlabel("step in chunk")
    fig.suptitle(f"step {step}: ground truth (solid) vs sampled (dashed)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
