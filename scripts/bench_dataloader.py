"""Benchmark: training DataLoader over ``LiberoDataset`` vs the user's original naive sampler.

The naive loader is what the first version of this project did per sample: pick a random file,
open it, list its demos, pick a random demo and step, read, close. Both produce the same sample
dict (same mapping code, same DataLoader settings), so the ratio measures the data-access design
(index + per-worker file handles + cached low-dim arrays) only.

Usage:
    python -m scripts.bench_dataloader --datasets_config configs/finetune_datasets.json \
        [--suites libero_demo] [--batch_size 32] [--num_workers 2] [--num_batches 20]

The last printed line is exactly ``loader <x> samples/s, naive <y> samples/s, ratio <r>``.
"""
from __future__ import annotations

import argparse
import logging
import time

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from configs.errors import exit_cli
from data import libero_hdf5 as lh
from configs.schema import CAMERA_SLOTS
from data.dataset import LiberoDataset
from policy.batch import BATCH, SAMPLE
from policy.libero_mapping import Pose, action_mask, encode_actions, encode_state, flip_to_camera_view
from scripts.compute_dataset_stats import load_yaml_config

log = logging.getLogger("bench_dataloader")


class NaiveRandomDataset(Dataset):
    """Random file -> random demo -> random step on every call; the file is reopened each time."""

    def __init__(self, files, layouts, cfg, length: int):
        self.files, self.layouts, self.cfg, self.length = files, layouts, cfg, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, _i):
        rng = np.random.default_rng()
        j = int(rng.integers(len(self.files)))
        path, layout, cfg = self.files[j], self.layouts[j], self.cfg
        with lh.open_file(path) as f:
            demo = str(rng.choice(lh.demo_keys(f, path)))
            low = lh.read_demo_lowdim(f, path, demo, cfg.dataset.use_joint_state)
            instruction = lh.read_instruction(f, path, cfg.dataset.instruction_source)
            scale = lh.read_osc_scale(f, path)
            off = lh.obs_offset(layout)
            k = int(rng.integers(off, len(low)))
            o = k - off
            hist = np.maximum(np.arange(o - cfg.common.img_history_size + 1, o + 1), 0)
            cams = [flip_to_camera_view(lh.read_images(f, path, demo, key, hist)) for key in lh.IMAGE_KEYS]
        h, w = cams[0].shape[1:3]
        images = np.zeros((cfg.common.img_history_size, len(CAMERA_SLOTS), h, w, 3), np.uint8)
        images[:, 0], images[:, 1] = cams
        state, smask = encode_state(low.ee_pos[o], low.ee_ori[o], low.gripper[o], None, False)
        m = min(cfg.common.action_chunk_size, len(low) - k)
        pre = slice(k - off, k - off + m)
        enc = encode_actions(low.actions[k:k + m], Pose(low.ee_pos[pre], low.ee_ori[pre]), cfg.dataset.action_encoding,
                             scale)
        actions = np.concatenate([enc, np.repeat(enc[-1:], cfg.common.action_chunk_size - m, 0)]).astype(np.float32)
        return {SAMPLE.images: images.reshape(-1, h, w, 3), SAMPLE.state: state.astype(np.float32)[None],
                SAMPLE.state_elem_mask: smask, SAMPLE.actions: actions,
                SAMPLE.action_elem_mask: action_mask(cfg.dataset.action_encoding), SAMPLE.instruction: instruction}


def _rate(loader: DataLoader, num_batches: int) -> float:
    """Samples/s over num_batches batches, after one warm-up batch (worker start-up excluded)."""
    it = iter(loader)
    next(it)
    n, t0 = 0, time.perf_counter()
    for _ in range(num_batches):
        try:
            batch = next(it)
        except StopIteration:  # small datasets: keep going over further epochs
            it = iter(loader)
            batch = next(it)
        n += len(batch[BATCH.actions])
    return n / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets_config", default="configs/finetune_datasets.json")
    ap.add_argument("--config", default="configs/base.yaml", help="experiment yaml (common/dataset sections)")
    ap.add_argument("--suites", nargs="*", default=None)
    ap.add_argument("--batch_size", type=int, default=32)
    ap.add_argument("--num_workers", type=int, default=2)
    ap.add_argument("--num_batches", type=int, default=20)
    ap.add_argument("--cache_dir", default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.manual_seed(0)

    ds = LiberoDataset(load_yaml_config(args.config), args.datasets_config, suites=args.suites,
                       cache_dir=args.cache_dir)
    common = dict(batch_size=args.batch_size, num_workers=args.num_workers,
                  persistent_workers=args.num_workers > 0, drop_last=True)
    loader = DataLoader(ds, shuffle=True, **common)
    paths, layouts = zip(*ds.file_layouts())
    naive_ds = NaiveRandomDataset(list(paths), list(layouts), ds.cfg,
                                  length=args.batch_size * (args.num_batches + 2))
    naive = DataLoader(naive_ds, shuffle=False, **common)
    fast = _rate(loader, args.num_batches)
    slow = _rate(naive, args.num_batches)
    log.info("%d samples in the index; batch %d, %d workers, %d timed batches", len(ds), args.batch_size,
             args.num_workers, args.num_batches)
    print(f"loader {fast:.1f} samples/s, naive {slow:.1f} samples/s, ratio {fast / slow:.2f}")


if __name__ == "__main__":
    exit_cli(main)
