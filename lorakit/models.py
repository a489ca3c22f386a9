"""The source documents' models, so that every chapter builds the same ones."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


def seed000_mlp() -> nn.Sequential:
    """Seed 000's net: Linear 10->20, Sigmoid, Linear 20->30, Sigmoid, Linear 30->1 (881 params)."""
    return nn.Sequential(nn.Linear(10, 20), nn.Sigmoid(), nn.Linear(20, 30), nn.Sigmoid(), nn.Linear(30, 1))


class SimpleMLP(nn.Module):
    """Seed 003's model: fc1 10->20, ReLU, fc2 20->2 (262 params)."""

    def __init__(self, d_in: int = 10, d_hidden: int = 20, d_out: int = 2):
        super().__init__()
        self.fc1 = nn.Linear(d_in, d_hidden)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(d_hidden, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.relu(self.fc1(x)))


@dataclass(frozen=True)
class TransformerConfig:
    """Sizes of the memory experiments' encoder-decoder transformer and its input."""

    d_model: int = 512  # h: hidden size
    nhead: int = 2  # a: attention heads
    num_encoder_layers: int = 2
    num_decoder_layers: int = 12
    dim_feedforward: int = 2048  # nn.Transformer's default, which the seed keeps
    dropout: float = 0.1  # nn.Transformer's default
    seq_len: int = 1024  # s
    batch: int = 1  # b

    @classmethod
    def for_scale(cls, scale: str) -> "TransformerConfig":
        """'full': the seed's own sizes (a GPU); 'ci': the same shape, small enough for a CPU."""
        if scale == "full":
            return cls()
        if scale == "ci":
            return cls(d_model=64, nhead=2, dim_feedforward=256, seq_len=128)
        raise ValueError(f"scale must be 'ci' or 'full', got {scale!r}")

    def inputs(self, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """Random (src, tgt), each (b, s, h), as the seed feeds them."""
        shape = (self.batch, self.seq_len, self.d_model)
        return torch.randn(shape, device=device), torch.rand(shape, device=device)


class LoRABranch(nn.Module):
    """The seed's side branch: x -> (alpha / r) * B A x, B zero at init.

    The seed scales by alpha alone; this follows the paper and peft (alpha / r).
    """

    def __init__(self, d_in: int, d_out: int, r: int = 4, alpha: float = 8.0):
        super().__init__()
        self.r, self.scaling = r, alpha / r
        self.lora_A = nn.Linear(d_in, r, bias=False)  # (r, d_in)
        self.lora_B = nn.Linear(r, d_out, bias=False)  # (d_out, r)
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lora_B(self.lora_A(x)) * self.scaling


class LoRADecoderLayer(nn.Module):
    """Seed 002's "embedded" PEFT: a LoRA branch beside a whole decoder layer, y = layer(x) + BAx."""

    def __init__(self, base_layer: nn.TransformerDecoderLayer, d_model: int, r: int = 4, alpha: float = 8.0):
        super().__init__()
        self.base_layer = base_layer
        self.lora = LoRABranch(d_model, d_model, r, alpha)

    def forward(self, tgt: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        return self.base_layer(tgt, memory) + self.lora(tgt)


class LoRATower(nn.Module):
    """Seed 002's "decoupled" PEFT: a side tower fed by every decoder layer's output.

    Layer i reads decoder output i plus the tower's previous output; the backbone's own
    outputs never depend on the tower, so no gradient flows back into the backbone.
    """

    def __init__(self, num_layers: int, d_model: int, r: int = 4, alpha: float = 8.0):
        super().__init__()
        self.lora_layers = nn.ModuleList(LoRABranch(d_model, d_model, r, alpha) for _ in range(num_layers))

    def forward(self, decoder_outputs: list[torch.Tensor]) -> torch.Tensor:
        out = torch.zeros_like(decoder_outputs[0])
        for layer, hidden in zip(self.lora_layers, decoder_outputs):
            out = layer(hidden + out)
        return out


class SeedTransformer(nn.Module):
    """Seed 002's encoder-decoder transformer (batch first), optionally with its PEFT variants.

    peft=None: the plain model (experiments A, B, C choose what trains with `train_only`);
    "embedded": every decoder layer wrapped in LoRADecoderLayer; "tower": a LoRATower beside
    the decoder. With a PEFT variant only the LoRA parameters are trainable.
    """

    def __init__(self, config: TransformerConfig, peft: str | None = None, r: int = 4, alpha: float = 8.0):
        super().__init__()
        if peft not in (None, "embedded", "tower"):
            raise ValueError(f"peft must be None, 'embedded' or 'tower', got {peft!r}")
        c, self.peft = config, peft
        kw = dict(d_model=c.d_model, nhead=c.nhead, dim_feedforward=c.dim_feedforward,
                  dropout=c.dropout, batch_first=True)
        self.encoder_layers = nn.ModuleList(nn.TransformerEncoderLayer(**kw) for _ in range(c.num_encoder_layers))
        self.encoder_norm = nn.LayerNorm(c.d_model)
        decoder = [nn.TransformerDecoderLayer(**kw) for _ in range(c.num_decoder_layers)]
        if peft == "embedded":
            decoder = [LoRADecoderLayer(layer, c.d_model, r, alpha) for layer in decoder]
        self.decoder_layers = nn.ModuleList(decoder)
        self.decoder_norm = nn.LayerNorm(c.d_model)
        self.lora_tower = LoRATower(c.num_decoder_layers, c.d_model, r, alpha) if peft == "tower" else None
        if peft is not None:
            train_only(self, [n for n, _ in self.named_parameters() if ".lora" in n or n.startswith("lora")])

    def forward(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        memory = src  # (b, s, h)
        for layer in self.encoder_layers:
            memory = layer(memory)
        memory = self.encoder_norm(memory)
        out, hidden = tgt, []
        for layer in self.decoder_layers:
            out = layer(out, memory)
            hidden.append(out)
        out = self.decoder_norm(out)
        if self.lora_tower is not None:
            out = out + self.lora_tower(hidden)
        return out  # (b, s, h)


def train_only(model: nn.Module, prefixes: list[str] | str) -> nn.Module:
    """Freeze every parameter except those whose name is, or starts with, a prefix + '.'."""
    prefixes = [prefixes] if isinstance(prefixes, str) else list(prefixes)
    names = [n for n, _ in model.named_parameters()]
    for prefix in prefixes:
        if not any(n == prefix or n.startswith(prefix + ".") for n in names):
            raise ValueError(f"{prefix!r} names no parameter; the model has e.g. {names[:4]}")
    for name, p in model.named_parameters():
        p.requires_grad_(any(name == q or name.startswith(q + ".") for q in prefixes))
    return model
