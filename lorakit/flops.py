"""Counting FLOPs of a forward and a backward pass with torch.utils.flop_counter."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ._args import as_args


@dataclass(frozen=True)
class FlopCount:
    """FLOPs of one step (a multiply-add counts 2), as PyTorch's flop counter counts them."""

    forward: int
    backward: int

    @property
    def total(self) -> int:
        return self.forward + self.backward

    def __repr__(self) -> str:
        return f"FlopCount(forward={self.forward:,}, backward={self.backward:,}, total={self.total:,})"


def count_flops(
    model: nn.Module,
    inputs: torch.Tensor | tuple,
    loss_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> FlopCount:
    """FLOPs of model(*inputs) and, if loss_fn is given, of loss_fn(output).backward()."""
    args = as_args(inputs)
    with FlopCounterMode(display=False) as fwd:
        out = model(*args)
        loss = loss_fn(out) if loss_fn is not None else None
    if loss is None:
        return FlopCount(forward=fwd.get_total_flops(), backward=0)
    with FlopCounterMode(display=False) as bwd:
        loss.backward()
    return FlopCount(forward=fwd.get_total_flops(), backward=bwd.get_total_flops())
