"""Offline task data: scikit-learn's bundled digits as sequences of row tokens (no download)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

N_ROWS, ROW_SIZE = 8, 8  # an 8x8 image is a sequence of 8 row tokens, 8 features each
MAX_INTENSITY = 16  # the bundled pixels are integers 0..16


@dataclass(frozen=True, eq=False)  # eq=False: == on tensors is elementwise, not a bool
class Split:
    """One split of a task: images x (n, 8, 8) float32 in [0, 1] and labels y (n,) int64 in 0..k-1."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)

    def __repr__(self) -> str:
        return f"Split(n={len(self)}, x={tuple(self.x.shape)}, labels={torch.bincount(self.y).tolist()})"


@dataclass(frozen=True, eq=False)
class DigitsTask:
    """A classification task over some of the ten digits; label i means digit classes[i]."""

    classes: tuple[int, ...]
    train: Split
    val: Split
    test: Split

    @property
    def num_labels(self) -> int:
        return len(self.classes)

    def __repr__(self) -> str:
        return (
            f"DigitsTask(classes={self.classes}, num_labels={self.num_labels}, "
            f"train={len(self.train)}, val={len(self.val)}, test={len(self.test)}, "
            f"tokens={N_ROWS}x{ROW_SIZE})"
        )


def load_digit_rows() -> tuple[torch.Tensor, torch.Tensor]:
    """All 1797 bundled digits: images (1797, 8, 8) float32 in [0, 1], digits (1797,) int64."""
    from sklearn.datasets import load_digits  # ships inside scikit-learn: read from disk, no download

    bunch = load_digits()
    # k / 16 is exact in float32, so the inputs are the same bits on every machine.
    images = torch.as_tensor(bunch.images, dtype=torch.float32) / MAX_INTENSITY
    return images, torch.as_tensor(bunch.target, dtype=torch.int64)


def digits_task(
    classes: Sequence[int], val_fraction: float = 0.2, test_fraction: float = 0.2, seed: int = 0
) -> DigitsTask:
    """The digits in `classes`, relabelled 0..k-1, split at random (fixed by seed) into train/val/test."""
    classes = tuple(classes)
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise ValueError(f"classes must be at least two distinct digits, got {classes!r}")
    if any(isinstance(c, bool) or not isinstance(c, (int, np.integer)) or not 0 <= c <= 9 for c in classes):
        raise ValueError(f"classes must be integers 0..9, got {classes!r}")
    classes = tuple(int(c) for c in classes)
    for name, f in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 < f < 1.0:
            raise ValueError(f"{name} must be in (0, 1), got {f!r}")
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(f"val_fraction + test_fraction must be < 1, got {val_fraction + test_fraction}")

    images, digit = load_digit_rows()
    keep = torch.isin(digit, torch.tensor(classes))
    images, digit = images[keep], digit[keep]
    relabel = torch.full((10,), -1, dtype=torch.int64)
    relabel[list(classes)] = torch.arange(len(classes))
    y = relabel[digit]

    # A permutation from NumPy's seeded generator: the same split on every machine and torch version.
    order = torch.as_tensor(np.random.default_rng(seed).permutation(len(y)))
    n_val, n_test = round(val_fraction * len(y)), round(test_fraction * len(y))
    parts = order[:n_val], order[n_val:n_val + n_test], order[n_val + n_test:]
    if min(n_val, n_test, len(y) - n_val - n_test) < 1:
        raise ValueError(f"fractions {val_fraction}, {test_fraction} of {len(y)} images leave a split empty")
    val, test, train = (Split(images[p], y[p]) for p in parts)
    return DigitsTask(classes=classes, train=train, val=val, test=test)
