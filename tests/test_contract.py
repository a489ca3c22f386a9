"""DESIGN.md's lorakit contract: the names outside tests call, with the parameters they pass."""
import inspect

import pytest

import lorakit

CONTRACT = {
    "LoRALinear": ["base", "r", "alpha", "dropout"],
    "add_lora": ["model", "target_modules", "r", "alpha", "dropout"],
    "count_parameters": ["model"],
    "lora_param_count": ["d_in", "d_out", "r"],
    "measure_memory": ["model", "inputs", "loss_fn", "optimizer"],
    "count_flops": ["model", "inputs", "loss_fn"],
    "time_step": ["model", "inputs", "loss_fn", "optimizer", "repeats", "warmup"],
    "pick_device": [],
    "seed_everything": ["seed"],
    "scale": [],
}
DEFAULTS = {("LoRALinear", "alpha"): 8.0, ("LoRALinear", "dropout"): 0.0, ("add_lora", "alpha"): 8.0,
            ("add_lora", "dropout"): 0.0, ("measure_memory", "optimizer"): None}


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_contract_name_and_parameters(name):
    obj = getattr(lorakit, name)
    params = inspect.signature(obj).parameters
    assert list(params)[: len(CONTRACT[name])] == CONTRACT[name]
    for (owner, param), default in DEFAULTS.items():
        if owner == name:
            assert params[param].default == default


def test_contract_result_fields():
    import torch
    from torch import nn

    model, x = nn.Linear(4, 3), torch.randn(2, 4)
    loss_fn = lambda y: y.sum()  # noqa: E731
    count = lorakit.count_parameters(model)
    assert (count.total, count.trainable, count.frozen, count.trainable_fraction) == (15, 15, 0, 1.0)
    flops = lorakit.count_flops(model, x, loss_fn)
    # x needs no gradient, so backward is the weight gradient's matmul alone
    assert (flops.forward, flops.backward) == (2 * 2 * 4 * 3, 2 * 2 * 4 * 3)
    report = lorakit.measure_memory(model, x, loss_fn, torch.optim.Adam(model.parameters()))
    assert report.total == report.parameters + report.gradients + report.optimizer_state + report.activations
    times = lorakit.time_step(model, x, loss_fn, torch.optim.SGD(model.parameters(), lr=0.1), repeats=2, warmup=1)
    assert min(times.forward, times.backward, times.optimizer) > 0 and times.total > 0
    layer = lorakit.LoRALinear(nn.Linear(4, 3), r=2)
    assert layer.scaling == 8.0 / 2 and layer.merged is False and layer.delta_weight().shape == (3, 4)
