"""Plot helpers: each draws on the matplotlib `ax` it is given and returns it (no saving, no show)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def plot_singular_values(ax, values: dict[str, Sequence[float]], r: int | None = None):
    """Singular values per matrix on a log scale, one line each; a dashed line at index r."""
    for label, s in values.items():
        s = np.asarray(s, dtype=float)
        ax.semilogy(np.arange(1, len(s) + 1), np.maximum(s, 1e-30), marker="o", ms=3, label=label)
    if r is not None:
        ax.axvline(r + 0.5, color="grey", ls="--", lw=1, label=f"r = {r}")
    ax.set_xlabel("index i")
    ax.set_ylabel("singular value $\\sigma_i$")
    ax.legend()
    return ax


def plot_trainable_fraction(ax, curves: dict[str, tuple[Sequence[int], Sequence[float]]]):
    """Trainable fraction against LoRA rank r, one line per model, both axes log scale."""
    for label, (ranks, fractions) in curves.items():
        ax.loglog(ranks, fractions, marker="o", ms=3, label=label)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("LoRA rank r")
    ax.set_ylabel("trainable / total parameters")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small")
    return ax


def plot_param_groups(ax, groups: dict[str, dict[str, int]]):
    """Where parameters live: one horizontal bar per model, split into fractions of its total."""
    labels = list(groups)
    names = list(dict.fromkeys(g for counts in groups.values() for g in counts))
    left = np.zeros(len(labels))
    for name in names:
        frac = np.array([groups[m].get(name, 0) / sum(groups[m].values()) for m in labels])
        ax.barh(labels, frac, left=left, label=name)
        left += frac
    ax.set_xlim(0, 1)
    ax.set_xlabel("fraction of the model's parameters")
    ax.invert_yaxis()  # first model on top
    ax.legend(ncol=len(names), loc="lower center", bbox_to_anchor=(0.5, 1.0), fontsize="small")
    return ax
