"""Where and how big to run: device choice, seeding, the ci/full scale preset."""
from __future__ import annotations

import os
import random

import numpy as np
import torch

SCALES = ("ci", "full")


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
