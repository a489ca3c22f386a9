"""The real peak of one training step: what an out-of-memory error is about (CPU and CUDA)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile, record_function

from ._args import as_args, call_model, check_loss, model_device
from .memory import MIB, storage_key
from .nf4 import quant_state_tensors
from .timeline import _quiet_stderr

PHASES = ("forward", "backward", "optimizer")
_LABELS = tuple(f"## peak {p} ##" for p in PHASES)


@dataclass(frozen=True)
class PeakMemory:
    """The highest bytes held during one training step, per phase, above what was held at its start."""

    device: str
    method: str  # "profiler memory events" (CPU) or "torch.cuda.max_memory_allocated" (CUDA)
    resident: int  # held when the step starts (CUDA: memory_allocated; CPU: see peak_memory)
    forward: int  # highest bytes above `resident` during the model's forward and the loss
    backward: int  # ... during loss.backward()
    optimizer: int  # ... during optimizer.step() and zero_grad (0 without an optimizer)

    @property
    def above_resident(self) -> int:
        """The step's highest bytes above what it started with."""
        return max(self.forward, self.backward, self.optimizer)

    @property
    def peak(self) -> int:
        """resident + above_resident: the most the step ever held at once."""
        return self.resident + self.above_resident

    def __repr__(self) -> str:
        rows = [f"PeakMemory on {self.device} ({self.method}; bytes, MiB):"]
        for name in ("resident",) + PHASES + ("peak",):
            v = getattr(self, name)
            label = name if name in ("resident", "peak") else f"{name} (above resident)"
            rows.append(f"  {label:<28}{v:>15,} {v / MIB:>10.3f}")
        return "\n".join(rows)


def resident_bytes(model: nn.Module, args: tuple, optimizer: torch.optim.Optimizer | None) -> int:
    """Bytes of the parameters (with a 4-bit weight's scales), their .grad, the optimizer's state and the
    input tensors, each storage once."""
    tensors = list(model.parameters()) + [p.grad for p in model.parameters() if p.grad is not None]
    tensors += [q for p in model.parameters() for q in quant_state_tensors(p)]
    if optimizer is not None:
        tensors += [v for st in optimizer.state.values() for v in st.values() if isinstance(v, torch.Tensor)]
    tensors += [a for a in args if isinstance(a, torch.Tensor)]
    sizes = {storage_key(t): t.untyped_storage().nbytes() for t in tensors if t.device.type != "meta"}
    return sum(sizes.values())


def _step(model, args, loss_fn, optimizer, mark: Callable[[int], None]) -> None:
    """forward + loss, backward, optimizer step + zero_grad; mark(i) before each phase."""
    mark(0)
    with record_function(_LABELS[0]):
        loss = check_loss(loss_fn(call_model(model, args)))
    mark(1)
    with record_function(_LABELS[1]):
        loss.backward()
        del loss
    mark(2)
    with record_function(_LABELS[2]):
        if optimizer is not None:
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        else:
            for p in model.parameters():
                p.grad = None
    mark(3)


def _cpu_peaks(model, args, loss_fn, optimizer) -> tuple[int, int, int]:
    """Running sum of the profiler's CPU [memory] events (+ alloc, - free), its maximum per phase."""
    prof = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
    with _quiet_stderr():
        prof.start()
    try:
        _step(model, args, loss_fn, optimizer, lambda i: None)
    finally:
        with _quiet_stderr():
            prof.stop()
    starts, memory = {}, []
    for ev in prof.profiler.kineto_results.events():
        try:
            name = ev.name()
        except UnicodeDecodeError:  # a garbled name of some other event; not ours
            continue
        if name == "[memory]" and ev.device_type() == torch._C._autograd.DeviceType.CPU:
            memory.append((ev.start_ns(), ev.nbytes()))
        elif name in _LABELS:
            starts[_LABELS.index(name)] = ev.start_ns()
    if len(starts) != len(_LABELS):
        raise RuntimeError("the profiler lost a phase range; run again")
    peaks, running = [0, 0, 0], 0
    for t, nbytes in sorted(memory):
        running += nbytes
        phase = max([0] + [i for i, s in starts.items() if s <= t])
        peaks[phase] = max(peaks[phase], running)
    return peaks[0], peaks[1], peaks[2]


def peak_memory(
    model: nn.Module,
    inputs: torch.Tensor | tuple,
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer | None = None,
) -> PeakMemory:
    """Run one training step and measure the most memory it held at once, per phase.

    CUDA: torch.cuda.max_memory_allocated, reset before each phase, minus memory_allocated at
    the start. CPU: the profiler's memory events (profile_memory=True) summed in time order;
    `resident` is then the parameters, .grad, optimizer state and inputs (each storage once),
    since the profiler sees only what is allocated or freed while it runs. Temporaries count.
    Leaves .grad as None; the optimizer's state stays, as in training.
    """
    args = as_args(inputs)
    device = model_device(model, args)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        start = torch.cuda.memory_allocated(device)
        peaks = [0, 0, 0, 0]

        def mark(i: int) -> None:
            torch.cuda.synchronize(device)
            if i > 0:
                peaks[i - 1] = torch.cuda.max_memory_allocated(device) - start
            torch.cuda.reset_peak_memory_stats(device)

        _step(model, args, loss_fn, optimizer, mark)
        return PeakMemory(str(device), "torch.cuda.max_memory_allocated", start, *peaks[:3])
    if device.type != "cpu":
        raise ValueError(f"peak_memory measures CPU and CUDA, not {device.type}")
    resident = resident_bytes(model, args, optimizer)
    return PeakMemory("cpu", "profiler memory events", resident, *_cpu_peaks(model, args, loss_fn, optimizer))

