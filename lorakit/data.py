"""Offline task data: scikit-learn's bundled digits as sequences of row tokens (no download)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

N_ROWS, ROW_SIZE = 8, 8  # an 8x8 image is a sequence of 8 row tokens, 8 features each
MAX_INTENSITY = 16  # the bundled pixels are integers 0..16
HALVES_SEED = 2024  # fixes the two disjoint halves of the images, whatever a task's own split seed


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
    """A classification task over some of the ten digits: digit classes[i] has label labels[i]."""

    classes: tuple[int, ...]
    labels: tuple[int, ...]
    half: int | None  # which half of the images (0 or 1), or None for all of them
    train: Split
    val: Split
    test: Split

    @property
    def num_labels(self) -> int:
        return len(set(self.labels))

    def __repr__(self) -> str:
        relabel = "" if self.labels == tuple(range(len(self.classes))) else f"labels={self.labels}, "
        half = "" if self.half is None else f"half={self.half}, "
        return (
            f"DigitsTask(classes={self.classes}, {relabel}num_labels={self.num_labels}, {half}"
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


def half_indices(half: int) -> torch.Tensor:
    """Indices (sorted) of one of two disjoint halves of the 1797 images: half 0 has 898, half 1 has 899."""
    if half not in (0, 1) or isinstance(half, bool):
        raise ValueError(f"half must be 0 or 1, got {half!r}")
    order = np.random.default_rng(HALVES_SEED).permutation(1797)
    return torch.as_tensor(np.sort(order[:898] if half == 0 else order[898:]))


def _is_int(v) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, np.integer))


def digits_task(
    classes: Sequence[int] = range(10),
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 0,
    labels: Sequence[int] | None = None,
    half: int | None = None,
) -> DigitsTask:
    """The digits in `classes` (of one half of the images if `half` is 0 or 1), split at random
    (fixed by seed) into train/val/test; digit classes[i] gets label labels[i] (default i).

    Labels may group digits (labels=(0, 1, 2, 3, 4, 0, 1, 2, 3, 4) for classes 0..9 is "digit mod 5"),
    but every label 0..k-1 must be used.
    """
    classes = tuple(classes)
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise ValueError(f"classes must be at least two distinct digits, got {classes!r}")
    if any(not _is_int(c) or not 0 <= c <= 9 for c in classes):
        raise ValueError(f"classes must be integers 0..9, got {classes!r}")
    classes = tuple(int(c) for c in classes)
    labels = tuple(range(len(classes))) if labels is None else tuple(labels)
    if len(labels) != len(classes) or not all(_is_int(v) for v in labels):
        raise ValueError(f"labels must be one integer per class ({len(classes)}), got {labels!r}")
    labels = tuple(int(v) for v in labels)
    if len(set(labels)) < 2 or set(labels) != set(range(len(set(labels)))):
        raise ValueError(f"labels must use every label 0..k-1 for some k >= 2, got {labels!r}")
    for name, f in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 < f < 1.0:
            raise ValueError(f"{name} must be in (0, 1), got {f!r}")
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(f"val_fraction + test_fraction must be < 1, got {val_fraction + test_fraction}")

    images, digit = load_digit_rows()
    if half is not None:
        rows = half_indices(half)
        images, digit = images[rows], digit[rows]
    keep = torch.isin(digit, torch.tensor(classes))
    images, digit = images[keep], digit[keep]
    relabel = torch.full((10,), -1, dtype=torch.int64)
    relabel[list(classes)] = torch.tensor(labels)
    y = relabel[digit]

    # A permutation from NumPy's seeded generator: the same split on every machine and torch version.
    order = torch.as_tensor(np.random.default_rng(seed).permutation(len(y)))
    n_val, n_test = round(val_fraction * len(y)), round(test_fraction * len(y))
    parts = order[:n_val], order[n_val:n_val + n_test], order[n_val + n_test:]
    if min(n_val, n_test, len(y) - n_val - n_test) < 1:
        raise ValueError(f"fractions {val_fraction}, {test_fraction} of {len(y)} images leave a split empty")
    val, test, train = (Split(images[p], y[p]) for p in parts)
    return DigitsTask(classes=classes, labels=labels, half=half, train=train, val=val, test=test)
