"""A LoRA layer written from the paper, and a function that puts it into a model."""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ._args import check_int


def check_rank(r: object) -> int:
    """Return r if it is a positive integer, else raise a ValueError that says so."""
    return check_int("rank r", r)


class LoRALinear(nn.Module):
    """A frozen Linear plus a trainable low-rank update: h = W0 x + (alpha / r) * B A x.

    Same layout and numerics as peft's `lora.Linear`: `lora_A.weight` is (r, in),
    `lora_B.weight` is (out, r) and starts at zero, so the layer starts as `base`.
    """

    def __init__(self, base: nn.Linear, r: int, alpha: float = 8.0, dropout: float = 0.0):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise ValueError(f"LoRALinear wraps an nn.Linear, got {type(base).__name__}")
        check_rank(r)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.base = base.requires_grad_(False)
        self.r, self.alpha, self.scaling = r, alpha, alpha / r
        kw = dict(bias=False, device=base.weight.device, dtype=base.weight.dtype)
        self.lora_A = nn.Linear(base.in_features, r, **kw)  # weight: (r, in)
        self.lora_B = nn.Linear(r, base.out_features, **kw)  # weight: (out, r)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-uniform A (as nn.Linear and peft do; the paper says Gaussian) and zero B."""
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    def delta_weight(self) -> torch.Tensor:
        """The update (alpha / r) * B @ A, shaped like the base weight: (out, in)."""
        return (self.lora_B.weight @ self.lora_A.weight) * self.scaling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        if self.merged:  # the update already sits inside base.weight
            return out
        x = x.to(self.lora_A.weight.dtype)
        # As peft: the sum comes back in the base layer's dtype (fp32 adapters on a bf16 model).
        return (out + self.lora_B(self.lora_A(self.dropout(x))) * self.scaling).to(out.dtype)

    @torch.no_grad()
    def merge(self) -> None:
        """Add the update into the base weight in place: W <- W + (alpha / r) B A."""
        if self.merged:
            raise RuntimeError("this LoRALinear is already merged; unmerge() first")
        self.base.weight += self.delta_weight().to(self.base.weight.dtype)
        self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Subtract the update from the base weight: the inverse of merge(), up to rounding."""
        if not self.merged:
            raise RuntimeError("this LoRALinear is not merged")
        self.base.weight -= self.delta_weight().to(self.base.weight.dtype)
        self.merged = False

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha}, scaling={self.scaling:g}, merged={self.merged}"


def matches(name: str, targets: Sequence[str]) -> bool:
    """peft's rule for a list of targets: the full name, or a name ending in '.' + target."""
    return any(name == t or name.endswith("." + t) for t in targets)


def add_lora(
    model: nn.Module,
    target_modules: Sequence[str] | str,
    r: int,
    alpha: float = 8.0,
    dropout: float = 0.0,
) -> nn.Module:
    """Replace the targeted Linears with LoRALinear, freeze everything else, return the model.

    Args:
        target_modules: module names, matched as peft matches a list; a single string is
            one name (not a regex, unlike peft).
    """
    check_rank(r)
    targets = [target_modules] if isinstance(target_modules, str) else list(target_modules)
    if not targets:
        raise ValueError("target_modules is empty: name at least one module")
    names = [n for n, _ in model.named_modules() if n]
    for t in targets:
        if not any(matches(n, [t]) for n in names):
            some = ", ".join(repr(n) for n in names[:8])
            raise ValueError(f"target {t!r} matches no module; the model has e.g. {some}")
    chosen = [n for n in names if matches(n, targets)]
    for n in chosen:
        module = model.get_submodule(n)
        if isinstance(module, LoRALinear):
            raise ValueError(f"module {n!r} already has LoRA")
        if not isinstance(module, nn.Linear):
            raise ValueError(f"target {n!r} is a {type(module).__name__}, not an nn.Linear")
    model.requires_grad_(False)
    for n in chosen:
        parent, _, child = n.rpartition(".")
        owner = model.get_submodule(parent) if parent else model
        setattr(owner, child, LoRALinear(model.get_submodule(n), r, alpha, dropout))
    for module in model.modules():  # adapters from an earlier add_lora call stay trainable
        if isinstance(module, LoRALinear):
            module.lora_A.requires_grad_(True)
            module.lora_B.requires_grad_(True)
    return model
