"""Fault injection for the crash-safety tests (never set in normal use).

``RDT_FAULT=kind@step[,kind@step]`` with kind:
  * ``kill``               SIGKILL the process right after that optimizer step (and its checkpoint);
  * ``kill_in_checkpoint`` SIGKILL while the checkpoint of that step is half written;
  * ``nan_loss``           make that step's loss tensor NaN before the backward pass (as a real
                           divergence would: NaN gradients, NaN weights after the step).
The faults are real (a SIGKILL cannot be caught), which is the point: they show what a crash leaves.
"""
from __future__ import annotations

import os
import signal


def armed(kind: str, step: int) -> bool:
    spec = os.environ.get("RDT_FAULT", "")
    for item in filter(None, (s.strip() for s in spec.split(","))):
        name, _, at = item.partition("@")
        if name == kind and at.isdigit() and int(at) == step:
            return True
    return False


def maybe_fault(kind: str, step: int, value=None):
    if armed(kind, step):
        if kind == "nan_loss":
            return value * float("nan")
        os.kill(os.getpid(), signal.SIGKILL)
    return value
