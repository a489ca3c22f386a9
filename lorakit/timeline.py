"""Memory over a few training steps, by category, from PyTorch's profiler (works on CPU and CUDA)."""
from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from ._args import as_args, check_int, model_device
from .timing import PHASE_LABELS, PHASES, labelled_step

# The order of the sizes in export_memory_timeline's JSON (torch/profiler/_memory_profiler.py,
# _CATEGORY_TO_COLORS); None there is memory the profiler could not categorise.
CATEGORIES = ("PARAMETER", "OPTIMIZER_STATE", "INPUT", "TEMPORARY", "ACTIVATION", "GRADIENT",
              "AUTOGRAD_DETAIL", "UNKNOWN")


@contextlib.contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 briefly: the profiler's C++ side logs a line at start and at stop
    (`USDT: ... profiler_start`) that Python cannot filter, and a notebook would show it."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _phase_ranges(prof: profile) -> list[tuple[str, float, float]]:
    """(phase, start_us, end_us) of each "## phase ##" range, on the memory timeline's clock.

    Read from the profiler's event tree, as export_memory_timeline does (prof.events() sometimes
    fails to decode an unrelated event's name in torch 2.13, so it is avoided).
    """
    labels = dict(zip(PHASE_LABELS, PHASES))
    found, todo = [], list(prof.profiler.kineto_results.experimental_event_tree())
    while todo:
        event = todo.pop()
        try:
            name = event.name
        except UnicodeDecodeError:  # a garbled name of some other event; not one of ours
            name = ""
        if name in labels:
            found.append((labels[name], event.start_time_ns / 1000, event.end_time_ns / 1000))
        else:
            todo.extend(event.children)
    return sorted(found, key=lambda p: p[1])


@dataclass(frozen=True)
class MemoryTimeline:
    """Bytes per category over time, and when each phase of each step ran (times in ms from the start)."""

    times_ms: tuple[float, ...]
    bytes: dict[str, tuple[int, ...]]  # category -> bytes at each time
    phases: tuple[tuple[str, float, float], ...]  # (phase, start_ms, end_ms), one per phase per step

    def peak(self, category: str | None = None) -> int:
        """The largest bytes of one category, or of all together (category=None)."""
        if category is None:
            return max(sum(col) for col in zip(*self.bytes.values()))
        if category not in self.bytes:
            raise ValueError(f"category must be one of {list(self.bytes)}, got {category!r}")
        return max(self.bytes[category])

    def to_frame(self):
        """A pandas DataFrame: one row per time, one column per category (bytes)."""
        import pandas as pd

        return pd.DataFrame(self.bytes, index=pd.Index(self.times_ms, name="time_ms"))

    def __repr__(self) -> str:
        peaks = ", ".join(f"{c}={self.peak(c):,}" for c in self.bytes if self.peak(c))
        return f"MemoryTimeline({len(self.times_ms)} points, {len(self.phases)} phases; peak bytes: {peaks})"


def memory_timeline(
    model: nn.Module,
    inputs: torch.Tensor | tuple,
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    steps: int = 3,
) -> MemoryTimeline:
    """Profile `steps` training steps (forward, backward, optimizer.step, zero_grad) and categorise memory.

    Uses profile(profile_memory=True, record_shapes=True, with_stack=True) and
    export_memory_timeline(*.json), as the memory experiments do, on the model's own device.
    """
    check_int("steps", steps)
    args = as_args(inputs)
    device = model_device(model, args)
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"the profiler's memory timeline covers CPU and CUDA, not {device.type}")
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    prof = profile(activities=activities, profile_memory=True, record_shapes=True, with_stack=True)
    with _quiet_stderr():
        prof.start()
    try:
        for _ in range(steps):
            labelled_step(model, args, loss_fn, optimizer, device)  # the same phases as time_step
    finally:
        with _quiet_stderr():
            prof.stop()
    dev = "cpu" if device.type == "cpu" else f"cuda:{device.index or torch.cuda.current_device()}"
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "timeline.json")
        with warnings.catch_warnings():
            # Deprecated in torch 2.13 in favour of CUDA-only memory snapshots; it is still the one
            # tool that categorises memory on a CPU, so silence exactly that warning.
            warnings.filterwarnings("ignore", message=".*export_memory_timeline.*", category=FutureWarning)
            prof.export_memory_timeline(path, device=dev)
        with open(path) as f:
            times, sizes = json.load(f)
    if not times:
        raise ValueError(f"the profiler recorded no memory events on {dev}")
    t0 = times[0]
    phases = [(name, (a - t0) / 1000, (b - t0) / 1000) for name, a, b in _phase_ranges(prof)]
    by_cat = {c: tuple(s[i + 1] for s in sizes) for i, c in enumerate(CATEGORIES)}  # s[0] is unused
    return MemoryTimeline(tuple((t - t0) / 1000 for t in times), by_cat, tuple(phases))
