"""Plot helpers: each draws on the matplotlib `ax` it is given and returns it (no saving, no show)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def plot_singular_values(ax, values: dict[str, Sequence[float]], r: int | None = None):
    """Singular values per matrix on a log scale, one line each; a dashed line at index r."""
    for label, s in values.items():
        s = torch.as_tensor(s).detach().cpu().double().numpy()  # a CUDA tensor too
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


def plot_stacked_bars(ax, table: dict[str, dict[str, float]], ylabel: str = "", scale: float = 1.0,
                      colors: dict[str, str] | None = None):
    """One stacked bar per row of table {bar: {part: value}} (values times `scale`), parts in a legend;
    `colors` maps a part to its colour (matplotlib's cycle for the others)."""
    bars = list(table)
    parts = list(dict.fromkeys(p for row in table.values() for p in row))
    bottom = np.zeros(len(bars))
    for part in parts:
        values = np.array([table[b].get(part, 0.0) * scale for b in bars], dtype=float)
        ax.bar(bars, values, bottom=bottom, label=part, color=(colors or {}).get(part))
        bottom += values
    if (bottom >= 0).all():  # a zero-height segment on top of a bar would pin the axis to its edge
        ax.set_ylim(0, 1.05 * bottom.max() if bottom.max() > 0 else 1.0)
    ax.set_ylabel(ylabel)
    ax.tick_params(axis="x", labelrotation=30)
    ax.legend()
    return ax


def plot_memory_timeline(ax, timeline, categories: Sequence[str] | None = None, x: str = "time"):
    """A lorakit.MemoryTimeline as stacked areas in MiB, phases shaded and named.

    x="time" puts milliseconds on the x axis; x="events" the index of each memory event, which does
    not stretch with a busy machine's stalls.
    """
    if x not in ("time", "events"):
        raise ValueError(f"x must be 'time' or 'events', got {x!r}")
    # The profiler's own colours for its categories (torch/profiler/_memory_profiler.py).
    colors = {"PARAMETER": "darkgreen", "OPTIMIZER_STATE": "goldenrod", "INPUT": "black",
              "TEMPORARY": "mediumpurple", "ACTIVATION": "red", "GRADIENT": "mediumblue",
              "AUTOGRAD_DETAIL": "royalblue", "UNKNOWN": "grey"}
    cats = [c for c in (categories or timeline.bytes) if max(timeline.bytes[c]) > 0]
    t = np.asarray(timeline.times_ms)
    xs = t if x == "time" else np.arange(len(t))
    ys = [np.asarray(timeline.bytes[c], dtype=float) / 2**20 for c in cats]
    ax.stackplot(xs, ys, labels=[c.lower() for c in cats], colors=[colors.get(c, "grey") for c in cats],
                 step="post")
    shade = {"forward": "0.95", "backward": "0.85", "optimizer": "0.75"}
    for name, a, b in timeline.phases:
        if x == "events":  # the first event at or after each phase boundary
            a, b = np.searchsorted(t, a), np.searchsorted(t, b)
        ax.axvspan(a, b, color=shade.get(name, "white"), zorder=-1, lw=0)
    ax.set_xlabel("time (ms)" if x == "time" else "memory event")
    ax.set_ylabel("memory (MiB)")
    ax.legend(loc="upper left", fontsize="x-small", ncol=2)
    return ax


def plot_histories(ax, histories: dict, metric: str = "val_loss", **line_kw):
    """One line per run: a per-epoch field of lorakit.History records (e.g. "val_accuracy") against epoch."""
    for label, history in histories.items():
        epochs = [r.epoch for r in history.records]
        ax.plot(epochs, [getattr(r, metric) for r in history.records], marker="o", ms=3, label=label, **line_kw)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric.replace("_", " "))
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize="small")
    return ax


def plot_lora_diagram(ax, d_in: int, d_out: int, r: int):
    """LoRA's shapes to scale: the frozen W (d_out x d_in) beside B (d_out x r) times A (r x d_in)."""
    from matplotlib.patches import Rectangle

    def block(x0, y0, w, h, color, text):
        ax.add_patch(Rectangle((x0, y0), w, h, facecolor=color, edgecolor="black", alpha=0.8))
        ax.text(x0 + w / 2, y0 + h / 2, text, ha="center", va="center", fontsize=10)

    gap = 0.25 * d_in
    block(0, 0, d_in, d_out, "lightgrey", f"W (frozen)\n{d_out} x {d_in}")
    ax.text(d_in + gap / 2, d_out / 2, "+", ha="center", va="center", fontsize=16)
    x_b = d_in + gap
    block(x_b, 0, r, d_out, "tab:orange", "")
    ax.text(x_b + r / 2, -0.06 * d_out, f"B\n{d_out} x {r}\n(zero at start)", ha="center", va="top", fontsize=9)
    block(x_b + r + 0.05 * d_in, d_out - r, d_in, r, "tab:blue", "")
    ax.text(x_b + r + 0.55 * d_in, d_out - r - 0.04 * d_out, f"A: {r} x {d_in} (random)",
            ha="center", va="top", fontsize=9)
    ax.set_xlim(-0.05 * d_in, x_b + r + 1.1 * d_in)
    ax.set_ylim(-0.3 * d_out, 1.08 * d_out)
    ax.set_aspect("equal")
    ax.axis("off")
    return ax
