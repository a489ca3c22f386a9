"""Predicting the bytes a transformer layer saves for backward (Korthikanti et al., 2022), per kernel."""
from __future__ import annotations

from ._args import check_int


def korthikanti_layer_bytes(s: int, b: int, h: int, a: int) -> int:
    """Korthikanti et al. (2022): bytes one GPT layer saves, 16-bit, 1-byte dropout masks: sbh(34 + 5as/h)."""
    return 34 * s * b * h + 5 * a * s * s * b


def predict_layer_activations(
    s: int,
    b: int,
    h: int,
    a: int,
    ffn: int | None = None,
    cross_attention: bool = False,
    ffn_dropout: bool = False,
    bytes_per_element: int = 2,
    bytes_per_mask: int = 1,
    attention: str = "math",
    dropout: bool = True,
    activation: str = "gelu",
) -> int:
    """Bytes one transformer layer saves for backward, counted term by term as Korthikanti et al. do.

    Defaults give their GPT layer (ffn = 4h, no cross-attention): sbh(34 + 5as/h). Args:
        ffn: the feed-forward width (4h if None); cross_attention: a second attention block and
            a third LayerNorm, keys/values of length s (a decoder layer); ffn_dropout: a dropout
            between the two feed-forward Linears (nn.Transformer has one, GPT does not);
        bytes_per_mask: 1 for a bool mask (CUDA's fused dropout), the element size where the
            mask is a float tensor (dropout on a CPU).
        attention: "math" (the paper's kernel: per head the (s, s) softmax output is kept) or
            "fused" (flash / memory-efficient SDPA: no (s, s) matrix; a fp32 logsumexp of (a, s)).
        dropout: False drops every mask, and the dropped-out copy of the probabilities.
        activation: "gelu" (the paper's: saves its input, then the second Linear saves its output)
            or "relu" (saves its output, which is the second Linear's input itself unless a live
            dropout sits between them: then one (s, b, f) tensor, not two).
    """
    if activation not in ("gelu", "relu"):
        raise ValueError(f"activation must be 'gelu' or 'relu', got {activation!r}")
    if attention not in ("math", "fused"):
        raise ValueError(f"attention must be 'math' or 'fused', got {attention!r}")
    for name, v in (("s", s), ("b", b), ("h", h), ("a", a)):
        check_int(name, v)
    e, f = bytes_per_element, 4 * h if ffn is None else ffn
    m = bytes_per_mask if dropout else 0
    sbh = s * b * h
    # Attention: the QKV input, Q and K (for QK^T), V, the output projection's input: 5 sbh
    # elements, the output dropout's mask; per head: softmax output, its dropout mask and output.
    per_head = a * s * s * b * ((2 * e + m) if dropout else e) if attention == "math" else a * s * b * 4
    attention = sbh * (5 * e + m) + per_head
    # MLP: first Linear's input, the activation's saved tensor (s, b, f), second Linear's input
    # (s, b, f), the output dropout's mask. A ReLU's output is the second Linear's input when no
    # dropout lies between them: one tensor.
    shared = activation == "relu" and not (ffn_dropout and dropout)
    mlp = sbh * (e + m) + (1 if shared else 2) * s * b * f * e + (s * b * f * m if ffn_dropout else 0)
    n_attention, n_norms = (2, 3) if cross_attention else (1, 2)
    return n_attention * attention + mlp + n_norms * sbh * e  # each LayerNorm saves its input
