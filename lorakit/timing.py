"""Timing a training step by phase (forward, backward, optimizer) and timing single calls.

The traps this module handles: warm-up steps are run and dropped, CUDA (or MPS) is synchronised
before every clock read, each phase is timed separately, results are medians of repeats with
their spread, and several set-ups are interleaved so that a slow spell on a shared machine hits
all of them alike instead of whichever happened to run then.
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.autograd.profiler import record_function
from torch.utils import benchmark

from ._args import as_args, call_model, check_int, check_loss, model_device
from .runtime import smoke

# The labels the memory experiments give the three phases of a step (torch.profiler shows them as ranges).
PHASE_LABELS = ("## forward ##", "## backward ##", "## optimizer ##")
PHASES = ("forward", "backward", "optimizer")

# One training set-up: (model, inputs, loss_fn, optimizer), as time_step takes them.
Case = tuple[nn.Module, "torch.Tensor | tuple", Callable[[torch.Tensor], torch.Tensor], torch.optim.Optimizer]


def _quartiles(runs: Sequence[float]) -> tuple[float, float, float]:
    """(q1, median, q3) of the runs; a single run is its own quartiles."""
    if len(runs) == 1:
        return runs[0], runs[0], runs[0]
    q1, q2, q3 = statistics.quantiles(runs, n=4, method="inclusive")
    return q1, q2, q3


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms"


@dataclass(frozen=True)
class Timing:
    """Seconds per call over repeats: the median and the interquartile range (q1, q3)."""

    runs: tuple[float, ...]  # seconds, one per repeat, in the order measured

    @property
    def median(self) -> float:
        return _quartiles(self.runs)[1]

    @property
    def q1(self) -> float:
        return _quartiles(self.runs)[0]

    @property
    def q3(self) -> float:
        return _quartiles(self.runs)[2]

    def __repr__(self) -> str:
        return f"Timing({_ms(self.median)} [IQR {_ms(self.q1)} to {_ms(self.q3)}], repeats={len(self.runs)})"


@dataclass(frozen=True)
class StepTimes:
    """Seconds per training-step phase over repeats; .forward, .backward, .optimizer, .total are medians.

    The forward phase is model(*inputs); the backward phase is loss_fn(output) and
    loss.backward() (as the memory experiments label them); the optimizer phase is step() and zero_grad().
    """

    forward_runs: tuple[float, ...]
    backward_runs: tuple[float, ...]
    optimizer_runs: tuple[float, ...]

    def __post_init__(self) -> None:
        n = {len(self.forward_runs), len(self.backward_runs), len(self.optimizer_runs)}
        if len(n) != 1 or 0 in n:
            raise ValueError(f"each phase needs the same number (>= 1) of runs, got {sorted(n)}")

    def phase(self, name: str) -> Timing:
        """One phase ('forward', 'backward', 'optimizer' or 'total') as a Timing."""
        if name == "total":
            runs = tuple(map(sum, zip(self.forward_runs, self.backward_runs, self.optimizer_runs)))
            return Timing(runs)
        if name not in PHASES:
            raise ValueError(f"phase must be one of {PHASES + ('total',)}, got {name!r}")
        return Timing(getattr(self, f"{name}_runs"))

    @property
    def forward(self) -> float:
        return self.phase("forward").median

    @property
    def backward(self) -> float:
        return self.phase("backward").median

    @property
    def optimizer(self) -> float:
        return self.phase("optimizer").median

    @property
    def total(self) -> float:
        """Median of the per-step totals (not the sum of the phase medians)."""
        return self.phase("total").median

    @property
    def phase_sum(self) -> float:
        """forward + backward + optimizer medians: a step estimate that one stalled phase cannot move.

        On a busy machine the scheduler sometimes pauses a step for a whole time slice; when
        that hits more than half the steps (in any phase) it moves the median total, while
        each phase's median stays clean.
        """
        return self.forward + self.backward + self.optimizer

    @property
    def repeats(self) -> int:
        return len(self.forward_runs)

    def to_frame(self):
        """A pandas DataFrame: one row per phase, median and quartiles in milliseconds."""
        import pandas as pd

        rows = {p: self.phase(p) for p in PHASES + ("total",)}
        return pd.DataFrame(
            {"median_ms": [t.median * 1e3 for t in rows.values()],
             "q1_ms": [t.q1 * 1e3 for t in rows.values()],
             "q3_ms": [t.q3 * 1e3 for t in rows.values()]},
            index=list(rows),
        )

    def __repr__(self) -> str:
        parts = ", ".join(f"{p}={_ms(self.phase(p).median)}" for p in PHASES + ("total",))
        return f"StepTimes({parts}, repeats={self.repeats})"


def synchronize(device: torch.device | str | None = None) -> None:
    """Wait for queued GPU work, so that a clock read afterwards sees it finished."""
    kind = torch.device(device).type if device is not None else None
    if kind in (None, "cuda") and torch.cuda.is_available():
        torch.cuda.synchronize(device)  # the model's own GPU, not only the current one
    if kind == "mps":
        torch.mps.synchronize()


def labelled_step(model, args, loss_fn, optimizer, device) -> tuple[float, float, float]:
    """One training step in the memory experiments' record_function ranges; seconds per phase.

    forward: model(*args); backward: loss_fn(output) and .backward(); optimizer: step and
    zero_grad. Each range ends with a device sync, so a profiler trace and the clock agree.
    """
    t0 = time.perf_counter()
    with record_function(PHASE_LABELS[0]):
        out = call_model(model, args)
        synchronize(device)
    t1 = time.perf_counter()
    with record_function(PHASE_LABELS[1]):
        loss = check_loss(loss_fn(out))
        loss.backward()
        synchronize(device)
    t2 = time.perf_counter()
    with record_function(PHASE_LABELS[2]):
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        synchronize(device)
    t3 = time.perf_counter()
    return t1 - t0, t2 - t1, t3 - t2


def _check_counts(repeats: int, warmup: int) -> None:
    check_int("repeats", repeats)
    check_int("warmup", warmup, minimum=0)


def time_steps(cases: Mapping[str, Case], repeats: int = 20, warmup: int = 3) -> dict[str, StepTimes]:
    """Time several training set-ups step by step, interleaved: step i of every case, then step i+1.

    Each case is (model, inputs, loss_fn, optimizer). Warm-up steps run first and are dropped.
    """
    _check_counts(repeats, warmup)
    if smoke():  # the full-scale CPU test: one timed step proves the path
        repeats, warmup = 1, min(warmup, 1)
    if not cases:
        raise ValueError("cases is empty: give at least one (model, inputs, loss_fn, optimizer)")
    prepared = {}
    for name, case in cases.items():
        if len(case) != 4:
            raise ValueError(f"case {name!r} must be (model, inputs, loss_fn, optimizer), got {len(case)} items")
        model, inputs, loss_fn, optimizer = case
        args = as_args(inputs)
        prepared[name] = (model, args, loss_fn, optimizer, model_device(model, args))
    runs: dict[str, list] = {name: [] for name in cases}
    for i in range(warmup + repeats):
        for name, (model, args, loss_fn, optimizer, device) in prepared.items():
            phases = labelled_step(model, args, loss_fn, optimizer, device)
            if i >= warmup:
                runs[name].append(phases)
    return {name: StepTimes(*map(tuple, zip(*r))) for name, r in runs.items()}


def time_step(
    model: nn.Module,
    inputs: torch.Tensor | tuple,
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    repeats: int = 20,
    warmup: int = 3,
) -> StepTimes:
    """Median seconds of a training step's forward, backward and optimizer phases (CUDA synchronised)."""
    return time_steps({"step": (model, inputs, loss_fn, optimizer)}, repeats, warmup)["step"]


def time_calls(
    fns: Mapping[str, Callable[[], object]],
    number: int = 10,
    rounds: int = 10,
    clock: Callable[[], float] | None = None,
) -> dict[str, Timing]:
    """Seconds per call of each function, with torch.utils.benchmark.Timer, rounds interleaved.

    Each round times `number` back-to-back calls of every function in turn (Timer warms up
    and synchronises CUDA); a run is the mean over those calls, and the Timing holds one run
    per round. `clock` replaces the wall clock (time.perf_counter): time.thread_time counts only
    this thread's CPU time, which a busy shared CPU does not inflate (CPU work only: it misses GPU time).
    """
    _check_counts(rounds, 0)
    _check_counts(number, 0)
    if smoke():  # the full-scale CPU test: one call per function proves the path
        number, rounds = 1, 1
    if not fns:
        raise ValueError("fns is empty: give at least one function to time")
    # Timer defaults to one thread; keep the thread count the caller set, like time_step.
    extra = {} if clock is None else {"timer": clock}
    timers = {name: benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads(), **extra)
              for name, fn in fns.items()}
    runs: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, timer in timers.items():
            runs[name].append(timer.timeit(number).mean)
    return {name: Timing(tuple(r)) for name, r in runs.items()}
