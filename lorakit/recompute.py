"""Gradient checkpointing as a memory lever: keep a block's inputs, recompute its insides in backward."""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint


class Checkpointed(nn.Module):
    """Run `module` under torch.utils.checkpoint (non-reentrant, the RNG state replayed for dropout)."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        return checkpoint(self.module, *args, use_reentrant=False)


def checkpoint_layers(layers: nn.ModuleList | nn.Sequential) -> nn.ModuleList | nn.Sequential:
    """Wrap every layer of a ModuleList (or Sequential) in Checkpointed, in place; return it."""
    if not isinstance(layers, (nn.ModuleList, nn.Sequential)):
        raise ValueError(f"checkpoint_layers takes an nn.ModuleList or nn.Sequential, got {type(layers).__name__}")
    for i, layer in enumerate(layers):
        if not isinstance(layer, Checkpointed):
            layers[i] = Checkpointed(layer)
    return layers
