"""Where and how big to run: device choice, seeding, the ci/full scale preset."""
from __future__ import annotations

import os
import random

import numpy as np
import torch

SCALES = ("ci", "full")
SMOKE_STEPS = 2  # batches per epoch that `train` runs in smoke mode


def smoke() -> bool:
    """True when env LORAKIT_SMOKE is 1: full shapes and exact counts, but repeats, epochs and
    sweep points cut to the fewest that still run every code path (the full-scale CPU test)."""
    value = os.environ.get("LORAKIT_SMOKE", "").strip().lower()
    if value not in ("", "0", "1", "false", "true"):
        raise ValueError(f"LORAKIT_SMOKE must be 0 or 1, got {value!r}")
    return value in ("1", "true")


def fewer(n: int, smoke_n: int = 1) -> int:
    """n, or at most smoke_n in smoke mode: for repeats, epochs and sweep sizes in a notebook."""
    return min(n, smoke_n) if smoke() else n


def pick_device() -> torch.device:
    """The best device here: CUDA, then Apple's MPS, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's (all devices') random generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def scale() -> str:
    """'ci' or 'full': env LORAKIT_SCALE if set, else 'full' on CUDA and 'ci' elsewhere."""
    value = os.environ.get("LORAKIT_SCALE", "").strip().lower()
    if not value:
        return "full" if torch.cuda.is_available() else "ci"
    if value not in SCALES:
        raise ValueError(f"LORAKIT_SCALE must be one of {SCALES}, got {value!r}")
    return value
