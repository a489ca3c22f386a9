"""Counting parameters: total, trainable, frozen; and predicting LoRA's count from shapes."""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from torch import nn

from ._args import check_int
from .layers import check_rank, matches


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
        check_int(name, v)
    return r * (d_in + d_out)


@dataclass(frozen=True)
class LoRATarget:
    """One module LoRA would wrap: A is (r x d_in), B is (d_out x r), no biases."""

    name: str
    kind: str  # the wrapped module's class: Linear, Conv1D or Embedding
    d_in: int  # in_features (num_embeddings for an Embedding)
    d_out: int  # out_features (embedding_dim for an Embedding)
    r: int

    @property
    def params(self) -> int:
        return lora_param_count(self.d_in, self.d_out, self.r)


@dataclass(frozen=True)
class LoRAPrediction:
    """What get_peft_model would make trainable, predicted without building adapters."""

    targets: tuple[LoRATarget, ...]
    saved: tuple[tuple[str, int], ...] = ()  # (name, params) of each modules_to_save copy

    @property
    def lora(self) -> int:
        return sum(t.params for t in self.targets)

    @property
    def trainable(self) -> int:
        return self.lora + sum(n for _, n in self.saved)

    def to_frame(self):
        """One row per wrapped module (and per modules_to_save copy), as a pandas DataFrame."""
        import pandas as pd

        rows = [dict(module=t.name, kind=t.kind, d_in=t.d_in, d_out=t.d_out, r=t.r, params=t.params)
                for t in self.targets]
        rows += [dict(module=n, kind="modules_to_save", params=p) for n, p in self.saved]
        frame = pd.DataFrame(rows, columns=["module", "kind", "d_in", "d_out", "r", "params"])
        return frame.astype({c: "Int64" for c in ("d_in", "d_out", "r", "params")})  # blanks stay ints

    def __repr__(self) -> str:
        return (f"LoRAPrediction(modules={len(self.targets)}, lora={self.lora:,}, "
                f"saved={sum(n for _, n in self.saved):,}, trainable={self.trainable:,})")


def _lora_shape(module: nn.Module) -> tuple[str, int, int] | None:
    """(kind, d_in, d_out) for a module peft's LoRA can wrap here, else None."""
    if isinstance(module, nn.Linear):
        return "Linear", module.in_features, module.out_features
    if isinstance(module, nn.Embedding):
        # peft: lora_embedding_A is (r x num_embeddings), lora_embedding_B is (embedding_dim x r)
        return "Embedding", module.num_embeddings, module.embedding_dim
    if type(module).__name__ == "Conv1D" and hasattr(module, "nx"):
        # transformers' GPT-2 Conv1D stores weight as (nx, nf) = (d_in, d_out)
        return "Conv1D", module.nx, module.nf
    return None


def _rank_for(name: str, r: int, rank_pattern: Mapping[str, int]) -> int:
    """peft's rank_pattern rule: the first key with re.match(rf"(.*\\.)?({key})$", name) wins."""
    for key, value in rank_pattern.items():
        if re.match(rf"(.*\.)?({key})$", name):
            return value
    return r


def predict_lora_params(
    model: nn.Module,
    target_modules: Sequence[str] | str,
    r: int,
    rank_pattern: Mapping[str, int] | None = None,
    modules_to_save: Sequence[str] = (),
) -> LoRAPrediction:
    """Predict LoRA's trainable parameters for `model` from module shapes alone (works on meta).

    Args:
        target_modules: a list matched as peft matches one (full name, or name ending in
            "." + entry); a single string is a regex matched with re.fullmatch, as in peft.
        rank_pattern: per-module ranks, keys matched as peft matches them.
        modules_to_save: modules peft copies and trains in full (task_type="SEQ_CLS" adds
            "classifier" and "score"); matched with name.endswith(entry), as peft does.
    """
    check_rank(r)
    rank_pattern = dict(rank_pattern or {})
    for key, value in rank_pattern.items():
        check_rank(value)
    names = [n for n, _ in model.named_modules() if n]
    saved_roots = [n for n in names if any(n.endswith(m) for m in modules_to_save)]
    # peft never puts LoRA inside a module it will save whole
    saved_roots = [n for n in saved_roots if not any(n.startswith(s + ".") for s in saved_roots if s != n)]
    if target_modules == "all-linear":
        raise ValueError("'all-linear' is peft's shorthand, not a pattern: list the module names instead")
    if isinstance(target_modules, str):
        chosen = [n for n in names if re.fullmatch(target_modules, n)]
    else:
        targets = list(target_modules)
        if not targets:
            raise ValueError("target_modules is empty: name at least one module")
        chosen = [n for n in names if matches(n, targets)]
    chosen = [n for n in chosen if not any(n == s or n.startswith(s + ".") for s in saved_roots)]
    if not chosen:
        some = ", ".join(repr(n) for n in names[:8])
        raise ValueError(f"target_modules {target_modules!r} match no module; the model has e.g. {some}")
    found = []
    for n in chosen:
        shape = _lora_shape(model.get_submodule(n))
        if shape is None:
            kind = type(model.get_submodule(n)).__name__
            raise ValueError(f"target {n!r} is a {kind}; this predictor handles Linear, Conv1D, Embedding")
        found.append(LoRATarget(n, *shape, r=_rank_for(n, r, rank_pattern)))
    saved = tuple((s, sum(p.numel() for p in model.get_submodule(s).parameters())) for s in saved_roots)
    return LoRAPrediction(tuple(found), saved)
