"""The peak memory of a training step, measured: profiler memory events on a CPU, the allocator on CUDA.

A reader runs out of memory at a peak, not at a sum of parts. What a step holds before it starts
(the model's storages, the optimizer state, the inputs) is counted tensor by tensor; what it
allocates on top is measured: on a CPU from torch.profiler's memory events (every allocation and
free, in time order), on CUDA from torch.cuda.max_memory_allocated.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from ._args import as_args, model_device
from .memory import optimizer_state_bytes
from .nf4 import stored_bytes
from .timing import labelled_step


@dataclass(frozen=True)
class StepPeak:
    """Bytes: held before a training step, the step's largest rise above that, and their sum."""

    resident: int  # model storages (quant states included), optimizer state, inputs
    rise: int  # measured: the highest the step's own allocations went above `resident`
    device: str

    @property
    def peak(self) -> int:
        return self.resident + self.rise

    def __repr__(self) -> str:
        return (f"StepPeak(peak={self.peak:,} B = resident {self.resident:,} + rise {self.rise:,}, "
                f"device={self.device})")


def cpu_rise(fn: Callable[[], object]) -> int:
    """The highest running sum of CPU allocations minus frees while fn runs (profiler memory events)."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"
              and e.device_type() == torch.autograd.DeviceType.CPU]
    running = highest = 0
    for e in sorted(events, key=lambda e: e.start_ns()):
        running += e.nbytes()  # negative for a free
        highest = max(highest, running)
    return highest


def step_peak(
    model: nn.Module,
    inputs: torch.Tensor | tuple,
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    warmup: int = 1,
) -> StepPeak:
    """Peak bytes of one training step after `warmup` steps (so that the optimizer state exists)."""
    args = as_args(inputs)
    device = model_device(model, args)
    for _ in range(warmup):
        labelled_step(model, args, loss_fn, optimizer, device)
    resident = stored_bytes(model) + optimizer_state_bytes(optimizer)
    resident += sum(t.untyped_storage().nbytes() for t in args if isinstance(t, torch.Tensor))

    def step() -> None:
        labelled_step(model, args, loss_fn, optimizer, device)

    if device.type == "cuda":
        torch.cuda.synchronize(device)
        start = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        step()
        rise = torch.cuda.max_memory_allocated(device) - start
    else:
        rise = cpu_rise(step)
    return StepPeak(resident, rise, device.type)
