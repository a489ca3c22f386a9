"""The predictor's attention terms against what PyTorch's math and fused (flash) SDPA kernels save."""
import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from lorakit import predict_layer_activations, saved_tensors

S, B, H, A = 128, 1, 64, 2


def saved(backend):
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(H, A, 4 * H, dropout=0.0, batch_first=True)
    x = torch.randn(B, S, H, requires_grad=True)
    with sdpa_kernel(backend):
        return saved_tensors(layer, x, lambda y: y.sum()).records


def per_head(**kw):
    """The predictor's per-head attention term: the layer with a = A minus the layer with a = 0 heads' share."""
    full = predict_layer_activations(S, B, H, A, bytes_per_element=4, bytes_per_mask=4, **kw)
    return full - predict_layer_activations(S, B, H, A, bytes_per_element=4, bytes_per_mask=4,
                                            attention="fused", **kw) + A * S * B * 4


def test_math_kernel_keeps_the_softmax_output():
    recs = [r for r in saved(SDPBackend.MATH) if r.counted]
    square = sum(r.storage_bytes for r in recs if r.shape[-2:] == (S, S))
    assert square == A * S * S * B * 4 == per_head(dropout=False)


def test_fused_kernel_keeps_no_square_matrix_only_a_logsumexp():
    recs = [r for r in saved(SDPBackend.FLASH_ATTENTION) if r.counted]
    assert not [r for r in recs if r.shape[-2:] == (S, S)]
    lse = [r for r in recs if r.shape == (B, A, S)]
    assert sum(r.storage_bytes for r in lse) == A * S * B * 4
    # In the predictor, "fused" has no s^2 term: doubling s doubles the bytes exactly.
    one = predict_layer_activations(S, B, H, A, attention="fused")
    assert predict_layer_activations(2 * S, B, H, A, attention="fused") == 2 * one


def test_relu_without_dropout_keeps_one_ffn_tensor_and_fused_layer_is_exact_but_norm_stats():
    # nn.TransformerEncoderLayer, no dropout, flash kernel: ReLU's output is linear2's input (one
    # storage); Q, K, V are views of one QKV storage. Only LayerNorm's mean/rstd (2 sb each) are extra.
    kept = sum(r.storage_bytes for r in saved(SDPBackend.FLASH_ATTENTION) if r.counted)
    predicted = predict_layer_activations(S, B, H, A, ffn=4 * H, ffn_dropout=True, bytes_per_element=4,
                                          attention="fused", dropout=False, activation="relu")
    assert kept == predicted + 2 * 2 * S * B * 4
    gelu = predict_layer_activations(S, B, H, A, attention="fused", dropout=False)
    assert gelu - predict_layer_activations(S, B, H, A, attention="fused", dropout=False, activation="relu") \
        == S * B * 4 * H * 2
    assert predict_layer_activations(S, B, H, A, ffn_dropout=True, activation="relu") == \
        predict_layer_activations(S, B, H, A, ffn_dropout=True)  # a live dropout between: two tensors


def test_defaults_unchanged_and_bad_kernel():
    assert predict_layer_activations(S, B, H, A) == S * B * H * (34 + 5 * A * S / H)
    with pytest.raises(ValueError, match="attention"):
        predict_layer_activations(S, B, H, A, attention="flash")
    with pytest.raises(ValueError, match="activation"):
        predict_layer_activations(S, B, H, A, activation="silu")
