"""NF4, the 4-bit NormalFloat of QLoRA (Dettmers et al. 2023), in plain PyTorch, and its bytes.

16 levels at quantiles of N(0, 1) scaled to [-1, 1]; each block of 64 weights is divided by its
absolute maximum (an fp32 scale) and each weight is stored as the index of its nearest level, two
indices per byte (the first in the high nibble). Double quantisation stores the block scales in
8 bits (blocks of 256, one fp32 scale each) after subtracting their mean (one fp32 offset).
Every function here matches bitsandbytes 0.50's CPU path bit for bit (tests/test_nf4.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

NF4_OFFSET = 0.9677083  # the outermost quantile: both halves' largest level at the same probability


def nf4_levels() -> torch.Tensor:
    """The 16 NF4 levels (fp32, sorted): 7 negative and 8 positive normal quantiles and 0, over max."""
    normal = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))
    # Float32 probabilities and float64 quantiles, as bitsandbytes' create_normal_map computes them.
    positive = normal.icdf(torch.linspace(NF4_OFFSET, 0.5, 9)[:-1].double()).float()  # 8 levels > 0
    negative = -normal.icdf(torch.linspace(NF4_OFFSET, 0.5, 8)[:-1].double()).float()  # 7 levels < 0
    levels = torch.cat([negative, torch.zeros(1), positive]).sort().values
    return levels / levels.max()


@dataclass(frozen=True)
class NF4Weight:
    """A weight in NF4: packed (numel/2,) uint8 codes, absmax (blocks,) fp32 scales, the shape."""

    packed: torch.Tensor
    absmax: torch.Tensor
    shape: tuple[int, ...]
    blocksize: int

    @property
    def codes(self) -> torch.Tensor:
        """The 4-bit level indices (numel,) as uint8, unpacked: high nibble first."""
        return torch.stack([self.packed >> 4, self.packed & 0xF], dim=1).reshape(-1)

    @property
    def nbytes(self) -> int:
        """Bytes stored: codes (half a byte a weight) and one fp32 scale a block."""
        return self.packed.numel() + 4 * self.absmax.numel()


def quantize_nf4(weight: torch.Tensor, blocksize: int = 64) -> NF4Weight:
    """Blockwise absmax scaling, then the index of the nearest NF4 level, two indices per byte."""
    flat = weight.detach().reshape(-1).float()
    if flat.numel() % blocksize or flat.numel() % 2:
        raise ValueError(f"numel {flat.numel()} must be a multiple of blocksize {blocksize} (and even)")
    blocks = flat.reshape(-1, blocksize)  # (numel / blocksize, blocksize)
    absmax = blocks.abs().amax(dim=1)  # (blocks,)
    scaled = (blocks * (1.0 / absmax.clamp(min=1e-38))[:, None]).clamp(-1, 1).reshape(-1)
    levels = nf4_levels()
    codes = (scaled[:, None] - levels).abs().argmin(dim=1).to(torch.uint8)  # nearest level
    packed = (codes[0::2] << 4) | codes[1::2]  # two 4-bit codes per byte
    return NF4Weight(packed, absmax, tuple(weight.shape), blocksize)


def dequantize_nf4(q: NF4Weight) -> torch.Tensor:
    """Level of each code times its block's absmax, in fp32, in the original shape."""
    values = nf4_levels()[q.codes.long()].reshape(-1, q.blocksize)
    return (values * q.absmax[:, None]).reshape(q.shape)


def nf4_bytes(numel: int, blocksize: int = 64, double_quant: bool = True, dq_blocksize: int = 256) -> int:
    """Bytes of one NF4 weight as bitsandbytes stores it (its copies of the lookup tables excluded).

    Codes numel/2; scales 4 bytes a block, or with double quantisation 1 byte a block plus an
    fp32 scale per dq_blocksize scales and one fp32 offset (their mean).
    """
    blocks = -(-numel // blocksize)
    codes = -(-numel // 2)
    if not double_quant:
        return codes + 4 * blocks
    return codes + blocks + 4 * -(-blocks // dq_blocksize) + 4


@dataclass(frozen=True)
class ModelBytes:
    """Bytes of a model with its Linears in NF4 and the rest kept at `kept_bytes_per_param` each."""

    name: str
    quantized_params: int  # weights of the quantised Linears
    kept_params: int  # everything else: embeddings, norms, biases, skipped modules (the head)
    quantized_bytes: int
    kept_bytes: int
    fp32_bytes: int  # the same model all in fp32

    @property
    def total(self) -> int:
        return self.quantized_bytes + self.kept_bytes

    @property
    def bits_per_quantized_param(self) -> float:
        return 8 * self.quantized_bytes / self.quantized_params

    def to_row(self) -> dict:
        """One row of a table: counts, bytes and MB (10^6 bytes)."""
        return {"quantised weights": f"{self.quantized_params:,}", "kept params": f"{self.kept_params:,}",
                "NF4 bytes": f"{self.quantized_bytes:,}", "kept bytes": f"{self.kept_bytes:,}",
                "fp32 MB": f"{self.fp32_bytes / 1e6:,.1f}", "QLoRA MB": f"{self.total / 1e6:,.1f}",
                "bits/weight": f"{self.bits_per_quantized_param:.3f}"}


def count_4bit_bytes(model: nn.Module, name: str = "", skip: tuple[str, ...] = ("classifier", "lm_head"),
                     kept_bytes_per_param: int = 2, double_quant: bool = True, blocksize: int = 64) -> ModelBytes:
    """Bytes by formula (works on the meta device): every nn.Linear weight in NF4 except modules
    named in `skip` (last name component); biases, embeddings, norms and skipped modules kept."""
    quantized = {id(m.weight): m.weight.numel() for full, m in model.named_modules()
                 if isinstance(m, nn.Linear) and full.rsplit(".", 1)[-1] not in skip}
    params = {id(p): p for p in model.parameters()}  # each shared parameter once
    kept = sum(p.numel() for i, p in params.items() if i not in quantized)
    q_bytes = sum(nf4_bytes(n, blocksize, double_quant) for n in quantized.values())
    total = sum(p.numel() for p in params.values())
    return ModelBytes(name, sum(quantized.values()), kept, q_bytes, kept_bytes_per_param * kept, 4 * total)


def quant_state_tensors(t: torch.Tensor) -> list[torch.Tensor]:
    """The tensors a bitsandbytes 4-bit weight keeps beside its codes: block scales and, with double
    quantisation, the offset and the scales' own scales. Left out: the lookup tables (`code`, 64 B of
    levels, and 1,024 B for the scales' 8-bit code), of which each weight holds its own copy."""
    state = getattr(t, "quant_state", None)
    if state is None:
        return []
    return [state.absmax] + ([state.offset, state.state2.absmax] if state.nested else [])


def stored_bytes(model: nn.Module, buffers: bool = True) -> int:
    """Bytes a loaded model holds: each parameter (and buffer) storage once, plus bitsandbytes'
    quant states (scales, nested scales, offsets); each weight's copies of the lookup tables
    (`code`) are left out, as in `nf4_bytes`."""
    seen, total = set(), 0
    for t in [*model.parameters(), *(model.buffers() if buffers else ())]:
        for u in [t, *quant_state_tensors(t)]:
            key = u.untyped_storage().data_ptr()
            if key not in seen:
                seen.add(key)
                total += u.untyped_storage().nbytes()
    return total
