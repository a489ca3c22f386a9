"""FLOP counts against the formula 2 * batch * d_in * d_out per matmul."""
import torch
from torch import nn

from lorakit import LoRALinear, count_flops


def test_linear_forward_and_backward():
    b, d_in, d_out = 8, 32, 16
    layer = nn.Linear(d_in, d_out)
    x = torch.randn(b, d_in, requires_grad=True)
    flops = count_flops(layer, x, lambda y: y.sum())
    assert flops.forward == 2 * b * d_in * d_out
    # Backward: input gradient and weight gradient, one matmul each.
    assert flops.backward == 2 * (2 * b * d_in * d_out)


def test_frozen_linear_skips_weight_gradient():
    b, d_in, d_out = 8, 32, 16
    layer = nn.Linear(d_in, d_out).requires_grad_(False)
    x = torch.randn(b, d_in, requires_grad=True)
    assert count_flops(layer, x, lambda y: y.sum()).backward == 2 * b * d_in * d_out


def test_forward_only_and_lora_extra():
    b, d, r = 4, 64, 8
    layer = LoRALinear(nn.Linear(d, d), r=r)
    x = torch.randn(b, d)
    unmerged = count_flops(layer, x)
    assert unmerged.backward == 0
    assert unmerged.forward == 2 * b * d * d + 2 * b * r * (d + d)
    layer.merge()
    assert count_flops(layer, x).forward == 2 * b * d * d
