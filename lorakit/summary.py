"""Summaries that count each parameter once: a per-module table, where parameters live, a file's layout."""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

from torch import nn

# Parameter groups of a transformer, tried in order on the owning module's name (Linear-like
# modules only; Embedding and *Norm modules are recognised by their class first).
GROUP_PATTERNS: tuple[tuple[str, str], ...] = (
    ("attention", r"(^|\.)(attn|attention|self_attn|crossattention)(\.|$)"),
    ("MLP", r"(^|\.)(mlp|intermediate|ffn|feed_forward|fc1|fc2)(\.|$)|(^|\.)layer\.\d+\.output\.dense$"),
)
GROUPS = ("embeddings", "attention", "MLP", "other")


@dataclass(frozen=True)
class ModuleRow:
    """The parameters a module owns itself (not its children's), each counted once model-wide."""

    name: str
    kind: str  # the module's class name
    params: int
    trainable: int


@dataclass(frozen=True)
class ModelSummary:
    """A per-module table whose column sums are the model's true totals."""

    rows: tuple[ModuleRow, ...]

    @property
    def total(self) -> int:
        return sum(r.params for r in self.rows)

    @property
    def trainable(self) -> int:
        return sum(r.trainable for r in self.rows)

    def to_frame(self):
        """The table as a pandas DataFrame, one row per module that owns parameters."""
        import pandas as pd

        return pd.DataFrame([vars(r) for r in self.rows], columns=["name", "kind", "params", "trainable"])

    def __repr__(self) -> str:
        width = max([len(r.name) for r in self.rows] + [6])
        lines = [f"{'module':<{width}}  {'type':<10} {'params':>12} {'trainable':>12}"]
        lines += [f"{r.name:<{width}}  {r.kind:<10} {r.params:>12,} {r.trainable:>12,}" for r in self.rows]
        lines.append(f"{'total':<{width}}  {'':<10} {self.total:>12,} {self.trainable:>12,}")
        return "\n".join(lines)


def summarize(model: nn.Module) -> ModelSummary:
    """One row per module that owns parameters; a shared parameter is counted at its first owner."""
    seen: set[int] = set()
    rows = []
    for name, module in model.named_modules():
        own = [p for p in module.parameters(recurse=False) if id(p) not in seen]
        seen.update(id(p) for p in own)
        if own:
            rows.append(ModuleRow(name or "(root)", type(module).__name__,
                                  sum(p.numel() for p in own), sum(p.numel() for p in own if p.requires_grad)))
    return ModelSummary(tuple(rows))


def _group_of(name: str, module: nn.Module) -> str:
    """Which of GROUPS a module's own parameters belong to."""
    kind = type(module).__name__
    if isinstance(module, nn.Embedding):
        return "embeddings"
    if kind.endswith("Norm"):  # LayerNorm, LlamaRMSNorm, ...: small, counted with the rest
        return "other"
    for group, pattern in GROUP_PATTERNS:
        if re.search(pattern, name):
            return group
    return "other"


@dataclass(frozen=True)
class ParamGroups:
    """Parameters per group (embeddings, attention, MLP, other), each counted once."""

    counts: tuple[tuple[str, int], ...]

    @property
    def total(self) -> int:
        return sum(n for _, n in self.counts)

    def as_dict(self) -> dict[str, int]:
        return dict(self.counts)

    def to_frame(self):
        """Counts and fractions of the total, as a pandas DataFrame."""
        import pandas as pd

        frame = pd.DataFrame(self.counts, columns=["group", "params"]).set_index("group")
        frame["fraction"] = (frame["params"] / self.total).round(4)
        return frame


def where_parameters_live(model: nn.Module) -> ParamGroups:
    """Split a transformer's parameters into embeddings, attention, MLP and other (norms, heads)."""
    counts = dict.fromkeys(GROUPS, 0)
    for row in summarize(model).rows:
        name = "" if row.name == "(root)" else row.name
        counts[_group_of(name, model.get_submodule(name))] += row.params
    return ParamGroups(tuple(counts.items()))


@dataclass(frozen=True)
class SafetensorsLayout:
    """A .safetensors file's parts in bytes: 8-byte length, JSON header, then raw tensor data."""

    file_bytes: int
    header_bytes: int  # the 8-byte length plus the JSON header
    data_bytes: int  # sum over tensors of numel * element size
    tensors: int


def safetensors_layout(path: str | os.PathLike) -> SafetensorsLayout:
    """Read a .safetensors file's header and split its size into header and data."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    data = max((t["data_offsets"][1] for t in header.values()), default=0)
    return SafetensorsLayout(os.path.getsize(path), 8 + n, data, len(header))


def torchsummary_count(model: nn.Module) -> "ParamCount":
    """What torchsummary.summary adds up, from the structure alone (assuming every module runs).

    Its forward hook sits on every module except nn.Sequential, nn.ModuleList and the root, and
    counts `module.weight` and `module.bias` wherever those attributes exist, owned or not;
    "trainable" is weight.requires_grad of that module.
    """
    from .params import ParamCount

    total = trainable = 0
    for module in model.modules():
        if module is model or isinstance(module, (nn.Sequential, nn.ModuleList)):
            continue
        weight = getattr(module, "weight", None)
        bias = getattr(module, "bias", None)
        n = sum(t.numel() for t in (weight, bias) if hasattr(t, "size"))
        total += n
        if hasattr(weight, "size") and weight.requires_grad:
            trainable += n
    return ParamCount(total=total, trainable=trainable)
