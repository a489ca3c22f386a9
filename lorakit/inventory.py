"""A model's parameters listed one per line: name, shape, trainable or not."""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class ParamRow:
    """One named parameter: its full name, shape and requires_grad flag."""

    name: str
    shape: tuple[int, ...]
    trainable: bool

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass(frozen=True)
class ParamTable:
    """Every named parameter of a model, in named_parameters() order (shared ones once)."""

    rows: tuple[ParamRow, ...]

    def names(self, trainable: bool | None = None) -> list[str]:
        """The names, all of them or only the (non-)trainable ones."""
        return [r.name for r in self.rows if trainable is None or r.trainable == trainable]

    def to_frame(self):
        """A pandas DataFrame with columns name, shape, numel, trainable."""
        import pandas as pd  # only the book's tables need pandas

        return pd.DataFrame(
            [(r.name, r.shape, r.numel, r.trainable) for r in self.rows],
            columns=["name", "shape", "numel", "trainable"],
        )

    def __repr__(self) -> str:
        shapes = [str(tuple(r.shape)) for r in self.rows]
        w_name = max([len("name")] + [len(r.name) for r in self.rows])
        w_shape = max([len("shape")] + [len(s) for s in shapes])
        out = [f"{'name':<{w_name}}  {'shape':<{w_shape}}  trainable"]
        out += [f"{r.name:<{w_name}}  {s:<{w_shape}}  {r.trainable}" for r, s in zip(self.rows, shapes)]
        return "\n".join(out)


def parameter_table(model: nn.Module) -> ParamTable:
    """List model.named_parameters(): name, shape, requires_grad."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"expected an nn.Module, got {type(model).__name__}")
    return ParamTable(tuple(
        ParamRow(name, tuple(p.shape), p.requires_grad) for name, p in model.named_parameters()
    ))
