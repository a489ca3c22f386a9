"""The profiler's memory timeline against exact counts: gradients and Adam state by hand."""
import pytest
import torch
from torch import nn

from lorakit import memory_timeline


def test_timeline_categories_and_phases():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 8))
    opt = torch.optim.Adam(model.parameters())
    tl = memory_timeline(model, torch.randn(32, 64), lambda y: y.pow(2).mean(), opt, steps=2)
    n_params = 64 * 128 + 128 + 128 * 8 + 8
    assert tl.peak("GRADIENT") == n_params * 4
    # exp_avg and exp_avg_sq per parameter, and Adam's 4-byte step counter per parameter tensor
    assert tl.peak("OPTIMIZER_STATE") == 2 * n_params * 4 + 4 * 4
    assert [p[0] for p in tl.phases] == ["forward", "backward", "optimizer"] * 2
    assert all(a <= b for _, a, b in tl.phases)
    assert list(tl.to_frame().columns) == list(tl.bytes)
    with pytest.raises(ValueError, match="steps must be"):
        memory_timeline(model, torch.randn(2, 64), lambda y: y.sum(), opt, steps=0)


def test_plot_memory_timeline():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lorakit.plots import plot_memory_timeline

    model = nn.Linear(8, 8)
    tl = memory_timeline(model, torch.randn(4, 8), lambda y: y.sum(), torch.optim.Adam(model.parameters()), steps=1)
    fig, ax = plt.subplots()
    assert plot_memory_timeline(ax, tl, x="events") is ax
    assert ax.get_xlabel() == "memory event"
    with pytest.raises(ValueError, match="x must be"):
        plot_memory_timeline(ax, tl, x="bytes")
    plt.close(fig)
