"""Deterministic, resumable, rank-sharded sampling of every timestep.

Each epoch is one permutation of all sample indices drawn from ``seed + epoch`` (or, when suites are
weighted unequally, ``len(dataset)`` weighted draws with replacement). Rank ``r`` of ``w`` takes every
``w``-th index starting at ``r``. ``set_epoch(epoch, skip)`` restarts inside an epoch after ``skip``
of this rank's samples, so a resumed run sees exactly the batches it would have seen.
"""
from __future__ import annotations

from typing import Iterator, Optional

import numpy as np
import torch
from torch.utils.data import Sampler


class EpochSampler(Sampler[int]):
    def __init__(self, num_samples: int, weights: Optional[np.ndarray] = None, seed: int = 0,
                 rank: int = 0, world_size: int = 1, drop_last_to: int = 1):
        self.num_samples = num_samples
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.double)
        self.seed, self.rank, self.world_size = seed, rank, world_size
        # Every rank gets the same number of samples (a multiple of the batch size) per epoch.
        per_rank = num_samples // world_size
        self.per_rank = max(drop_last_to, per_rank - per_rank % drop_last_to)
        self.epoch, self.skip = 0, 0

    @classmethod
    def for_dataset(cls, dataset, seed: int, rank: int = 0, world_size: int = 1,
                    drop_last_to: int = 1) -> "EpochSampler":
        """Permutations when every sample weighs the same (suite weights proportional to suite sizes),
        weighted draws otherwise (``LiberoDataset.sample_weights``)."""
        weights = None if dataset.weights_are_uniform() else dataset.sample_weights()
        return cls(len(dataset), weights, seed=seed, rank=rank, world_size=world_size, drop_last_to=drop_last_to)

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def epoch_indices(self, epoch: int) -> np.ndarray:
        g = torch.Generator().manual_seed(self.seed + epoch)
        if self.weights is None:
            order = torch.randperm(self.num_samples, generator=g)
        else:
            order = torch.multinomial(self.weights, self.num_samples, replacement=True, generator=g)
        if len(order) < self.per_rank * self.world_size:  # tiny datasets: wrap around
            reps = -(-self.per_rank * self.world_size // len(order))
            order = order.repeat(reps)
        mine = order[self.rank:: self.world_size][: self.per_rank]
        return mine.numpy()

    def __iter__(self) -> Iterator[int]:
        return iter(self.epoch_indices(self.epoch)[self.skip:].tolist())

    def __len__(self) -> int:
        return self.per_rank - self.skip
