"""Where a training step's wall time goes: waiting for the DataLoader, and encoding (SigLIP, T5).

Logged as ``data_wait_frac`` / ``encode_frac`` of each logging interval, so a slow input pipeline or
a vision encoder that dominates shows up in metrics.jsonl (and in ``scripts/gpu_check``). On CUDA the
encode time is bracketed by synchronisations (kernels run asynchronously).
"""
from __future__ import annotations

import contextlib
import time

import torch


class StepShares:
    def __init__(self, device: torch.device):
        self.sync = device.type == "cuda"
        self.reset()

    def reset(self) -> None:
        self.wait = self.encode = 0.0
        self.start = self.mark = time.perf_counter()

    def fetched(self) -> None:
        """A batch arrived: the time since the last step's work ended was spent waiting for it."""
        self.wait += time.perf_counter() - self.mark

    def work_done(self) -> None:
        self.mark = time.perf_counter()

    @contextlib.contextmanager
    def encoding(self):
        if self.sync:
            torch.cuda.synchronize()
        t = time.perf_counter()
        yield
        if self.sync:
            torch.cuda.synchronize()
        self.encode += time.perf_counter() - t

    def shares(self) -> dict:
        total = max(time.perf_counter() - self.start, 1e-9)
        return {"data_wait_frac": self.wait / total, "encode_frac": self.encode / total}
