"""peak_memory against hand counts of what PyTorch allocates, and against CUDA's own allocator."""
import pytest
import torch
from torch import nn

from lorakit import PeakMemory, measure_memory, peak_memory

F32 = 4
SMALL = 64  # a few scalar allocations (the loss, Adam's step) that a hand count leaves out


def linear_case(n=512, d=256):
    torch.manual_seed(0)
    return nn.Linear(d, d, bias=False), torch.randn(n, d)


def test_forward_peak_is_output_plus_its_square():
    model, x = linear_case()
    n, d = x.shape
    got = peak_memory(model, x, lambda y: y.pow(2).sum())
    # forward: y = x W^T (n, d) and y.pow(2) (n, d) are alive together when sum() runs.
    assert 0 <= got.forward - 2 * n * d * F32 <= SMALL
    assert got.optimizer == 0 and isinstance(got, PeakMemory)
    assert all(p.grad is None for p in model.parameters())


def test_resident_counts_parameters_inputs_and_adam_state():
    model, x = linear_case()
    n, d = x.shape
    opt = torch.optim.Adam(model.parameters())
    first = peak_memory(model, x, lambda y: y.pow(2).sum(), opt)
    assert first.resident == (d * d + n * d) * F32
    second = peak_memory(model, x, lambda y: y.pow(2).sum(), opt)
    assert second.resident == (3 * d * d + n * d) * F32 + F32  # + exp_avg, exp_avg_sq and a 4-byte step
    # First step: Adam creates its two moments while the gradient is alive.
    assert first.optimizer >= 3 * d * d * F32
    assert second.peak == second.resident + second.above_resident


def test_peak_is_below_the_sum_of_parts_on_a_deep_model():
    torch.manual_seed(0)
    model = nn.Sequential(*[nn.Sequential(nn.Linear(64, 64), nn.ReLU()) for _ in range(8)])
    x = torch.randn(256, 64)
    opt = torch.optim.Adam(model.parameters())
    parts = measure_memory(model, x, lambda y: y.pow(2).mean(), opt)
    got = peak_memory(model, x, lambda y: y.pow(2).mean(), opt)
    # Activations are all alive at the end of forward: the peak holds at least them.
    assert got.forward >= parts.activations
    # The step starts with the parameters, Adam's state and the input resident.
    assert got.resident == parts.parameters + parts.optimizer_state + x.nbytes


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cpu_events_agree_with_cuda_allocator():
    model, x = linear_case()
    cpu = peak_memory(model, x, lambda y: y.pow(2).sum())
    cuda = peak_memory(model.cuda(), x.cuda(), lambda y: y.pow(2).sum())
    assert abs(cuda.forward - cpu.forward) <= 1024  # CUDA rounds blocks to 512 bytes
