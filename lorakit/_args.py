"""How helpers that run a model take its inputs."""
from __future__ import annotations

import torch


def as_args(inputs: torch.Tensor | tuple) -> tuple:
    """A tensor becomes a 1-tuple; a tuple or list is passed as model(*inputs)."""
    if isinstance(inputs, torch.Tensor):
        return (inputs,)
    if isinstance(inputs, (tuple, list)):
        return tuple(inputs)
    raise ValueError(f"inputs must be a tensor or a tuple of them, got {type(inputs).__name__}")
