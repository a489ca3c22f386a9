"""Seed 002's suggestion: run the frozen backbone once, cache what the LoRA tower reads, train the tower alone."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .models import LoRATower, SeedTransformer


@dataclass(frozen=True)
class BackboneCache:
    """What a SeedTransformer's LoRATower reads from the backbone, for one batch."""

    output: torch.Tensor  # decoder_norm(last decoder output), (b, s, h)
    hidden: tuple[torch.Tensor, ...]  # every decoder layer's output, L tensors of (b, s, h)

    @property
    def nbytes(self) -> int:
        """Bytes the cache holds (one batch)."""
        return sum(t.numel() * t.element_size() for t in (self.output, *self.hidden))

    @property
    def inputs(self) -> tuple[torch.Tensor, ...]:
        """The arguments CachedTower takes: (output, *hidden)."""
        return (self.output, *self.hidden)

    def __repr__(self) -> str:
        shape = tuple(self.output.shape)
        return f"BackboneCache(1 + {len(self.hidden)} tensors of {shape}, {self.nbytes:,} bytes)"


@torch.no_grad()
def cache_backbone(model: SeedTransformer, src: torch.Tensor, tgt: torch.Tensor) -> BackboneCache:
    """Run model's backbone once without autograd and keep the decoder outputs the tower reads.

    Dropout acts as the model's mode says: cache in eval() mode for a deterministic backbone
    (a cache in train() mode freezes one dropout draw for every epoch).
    """
    if not isinstance(model, SeedTransformer) or model.lora_tower is None:
        raise ValueError("cache_backbone needs a SeedTransformer built with peft='tower'")
    hidden: list[torch.Tensor] = []
    outputs: list[torch.Tensor] = []
    handles = [layer.register_forward_hook(lambda m, i, o: hidden.append(o)) for layer in model.decoder_layers]
    handles.append(model.decoder_norm.register_forward_hook(lambda m, i, o: outputs.append(o)))
    try:
        model(src, tgt)
    finally:
        for h in handles:
            h.remove()
    return BackboneCache(output=outputs[0], hidden=tuple(hidden))


class CachedTower(nn.Module):
    """Train a LoRATower from a BackboneCache: the same output as the tower model, no backbone needed."""

    def __init__(self, tower: LoRATower):
        super().__init__()
        self.tower = tower

    def forward(self, output: torch.Tensor, *hidden: torch.Tensor) -> torch.Tensor:
        return output + self.tower(list(hidden))  # (b, s, h)
