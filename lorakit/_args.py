"""How helpers that run a model take its inputs, call it, and check its loss."""
from __future__ import annotations

import torch
from torch import nn


def as_args(inputs: torch.Tensor | tuple) -> tuple:
    """A tensor becomes a 1-tuple; a tuple or list is passed as model(*inputs)."""
    if isinstance(inputs, torch.Tensor):
        return (inputs,)
    if isinstance(inputs, (tuple, list)):
        return tuple(inputs)
    raise ValueError(f"inputs must be a tensor or a tuple of them, got {type(inputs).__name__}")


def call_model(model: nn.Module, args: tuple):
    """model(*args); a shape mismatch becomes a ValueError that names the input shapes."""
    try:
        return model(*args)
    except RuntimeError as err:
        if "shape" not in str(err) and "size" not in str(err):
            raise
        shapes = ", ".join(str(tuple(a.shape)) if isinstance(a, torch.Tensor) else type(a).__name__
                           for a in args)
        raise ValueError(f"the model rejected inputs of shape {shapes}: {err}") from err


def check_loss(loss: object) -> torch.Tensor:
    """Return loss if it is a one-element tensor, else raise a ValueError that says what it is."""
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        got = f"shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise ValueError(f"loss_fn must return a scalar tensor (one element), got {got}")
    return loss


def model_device(model: nn.Module, args: tuple = ()) -> torch.device:
    """Where the model runs: its first parameter's device, else the first tensor input's, else CPU."""
    p = next(model.parameters(), None)
    if p is not None:
        return p.device
    for a in args:
        if isinstance(a, torch.Tensor):
            return a.device
    return torch.device("cpu")


def check_int(name: str, value: object, minimum: int = 1) -> int:
    """Return value if it is an int (not a bool) >= minimum, else a ValueError that names it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        kind = {1: "a positive integer", 0: "a non-negative integer"}.get(minimum, f"an integer >= {minimum}")
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    return value
