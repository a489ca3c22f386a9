"""lorakit.peak: profiler memory events against hand counts of what a step allocates."""
import torch
import torch.nn.functional as F
from torch import nn

import lorakit


def test_cpu_rise_of_one_allocation_is_its_bytes():
    def alloc_and_free():
        x = torch.ones(1000, 1000)  # 4,000,000 bytes, freed on return
        return float(x[0, 0])

    assert lorakit.cpu_rise(alloc_and_free) == 4_000_000


def test_cpu_rise_of_two_live_allocations_adds_them():
    def two():
        a, b = torch.ones(1000), torch.ones(2000)
        return float(a.sum() + b.sum())

    assert lorakit.cpu_rise(two) >= 4 * 3000


def test_step_peak_resident_is_weights_state_and_inputs():
    torch.manual_seed(0)
    model = nn.Linear(256, 512)
    x, y = torch.randn(64, 256), torch.randint(0, 512, (64,))
    opt = torch.optim.AdamW(model.parameters())
    result = lorakit.step_peak(model, x, lambda out: F.cross_entropy(out, y), opt)
    params = (256 * 512 + 512) * 4
    assert result.resident == params + 2 * params + 2 * 4 + 64 * 256 * 4  # weights, moments, steps, x
    # the step holds at least the gradients (as many bytes as the weights) at once
    assert result.rise >= params and result.peak == result.resident + result.rise
