"""Counting parameters: total, trainable, frozen."""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class ParamCount:
    """Parameter counts of a model; each shared parameter counted once."""

    total: int
    trainable: int

    @property
    def frozen(self) -> int:
        return self.total - self.trainable

    @property
    def trainable_fraction(self) -> float:
        return self.trainable / self.total if self.total else 0.0

    def __repr__(self) -> str:
        return (
            f"ParamCount(total={self.total:,}, trainable={self.trainable:,}, "
            f"frozen={self.frozen:,}, trainable_fraction={self.trainable_fraction:.4%})"
        )


def count_parameters(model: nn.Module) -> ParamCount:
    """Count a model's parameters (model.parameters() yields a shared tensor once)."""
    params = list(model.parameters())
    return ParamCount(
        total=sum(p.numel() for p in params),
        trainable=sum(p.numel() for p in params if p.requires_grad),
    )


def lora_param_count(d_in: int, d_out: int, r: int) -> int:
    """Trainable parameters of one LoRA pair: A is (r x d_in), B is (d_out x r)."""
    for name, v in (("d_in", d_in), ("d_out", d_out), ("r", r)):
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    return r * (d_in + d_out)
