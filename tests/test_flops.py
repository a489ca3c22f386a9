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


def _two_lora_layers(d, r):
    return nn.Sequential(LoRALinear(nn.Linear(d, d), r=r), LoRALinear(nn.Linear(d, d), r=r))


def test_split_flops_by_hand():
    from lorakit import split_flops

    b, d, r = 8, 32, 4
    split = split_flops(_two_lora_layers(d, r), torch.randn(b, d), lambda y: y.sum())
    assert split.backbone_forward == 2 * (2 * b * d * d)
    assert split.adapter_forward == 2 * (2 * b * r * (d + d))
    # Frozen bases: only layer 2 passes a gradient back to its input (x needs none).
    assert split.backbone_backward == 2 * b * d * d
    # Adapters: weight gradients of A and B in both layers (4), input gradients through both
    # B's (2) and through layer 2's A (1): 7 matmuls of 2*b*d*r each.
    assert split.adapter_backward == 7 * (2 * b * d * r)


def test_split_flops_adds_up_and_matches_peft():
    import copy

    from peft import LoraConfig, get_peft_model

    from lorakit import add_lora, split_flops

    torch.manual_seed(0)
    b, d, r = 4, 16, 2
    base = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d))
    x = torch.randn(b, d)
    loss = lambda y: y.pow(2).mean()
    ours = add_lora(copy.deepcopy(base), ["0", "2"], r=r)
    theirs = get_peft_model(copy.deepcopy(base), LoraConfig(target_modules=["0", "2"], r=r))
    a, p = split_flops(ours, x, loss), split_flops(theirs, x, loss)
    assert (a.backbone_forward, a.adapter_forward, a.backbone_backward, a.adapter_backward) == (
        p.backbone_forward, p.adapter_forward, p.backbone_backward, p.adapter_backward)
    whole = count_flops(ours, x, loss)
    assert (a.forward, a.backward) == (whole.forward, whole.backward)


def test_tower_has_no_backbone_backward():
    from lorakit import SeedTransformer, TransformerConfig, split_flops

    c = TransformerConfig(d_model=16, nhead=2, num_encoder_layers=1, num_decoder_layers=3,
                          dim_feedforward=32, seq_len=8)
    loss = lambda y: y.pow(2).mean()
    tower = split_flops(SeedTransformer(c, peft="tower"), c.inputs(), loss)
    embedded = split_flops(SeedTransformer(c, peft="embedded"), c.inputs(), loss)
    full = split_flops(SeedTransformer(c), c.inputs(), loss)
    assert tower.backbone_backward == 0 and tower.adapter_backward > 0
    assert 0 < embedded.backbone_backward < full.backbone_backward
    assert tower.backbone_forward == embedded.backbone_forward == full.backbone_forward


def test_count_ops_by_hand():
    from lorakit import count_ops

    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 1))
    opt = torch.optim.Adam(model.parameters(), foreach=False)
    ops = count_ops(model, torch.randn(5, 4), lambda y: y.sum(), opt)
    # A 2-D Linear decomposes into t (transpose the weight) and addmm.
    assert ops.forward_ops["aten.addmm"] == 2 and ops.forward_ops["aten.t"] == 2
    assert ops.module_calls == 4  # the Sequential and its three children
    # Single-tensor Adam runs one addcdiv_ per parameter tensor (2 weights, 2 biases).
    assert ops.optimizer_ops["aten.addcdiv_"] == 4


def test_count_flops_leaves_no_grad_behind():
    # A later helper (measure_memory) refuses a model that already holds .grad tensors.
    from lorakit import measure_memory
    model = nn.Linear(8, 4)
    x = torch.randn(2, 8)
    count_flops(model, x, lambda y: y.sum())
    assert all(p.grad is None for p in model.parameters())
    assert measure_memory(model, x, lambda y: y.sum()).gradients == (8 * 4 + 4) * 4


def test_wrong_input_shape_is_a_value_error():
    import pytest
    with pytest.raises(ValueError, match=r"inputs of shape \(2, 7\)"):
        count_flops(nn.Linear(8, 4), torch.randn(2, 7), lambda y: y.sum())


def _stack(width: int, depth: int = 4) -> nn.Sequential:
    return nn.Sequential(*[m for _ in range(depth) for m in (nn.Linear(width, width), nn.ReLU())])


def test_inline_flop_counter_matches_count_flops():
    """The timing chapter's plain FlopCounterMode cell (loss inside the forward phase) and count_flops agree."""
    from torch.utils.flop_counter import FlopCounterMode

    from lorakit import seed000_mlp

    model, x, y = seed000_mlp(), torch.randn(100, 10), torch.randn(100, 1)
    loss_fn = lambda out: nn.functional.mse_loss(out, y)
    with FlopCounterMode(display=False) as counter:
        loss = loss_fn(model(x))
        forward = counter.get_total_flops()
        loss.backward()
    backward = counter.get_total_flops() - forward
    assert forward == 2 * 100 * (10 * 20 + 20 * 30 + 30 * 1)
    got = count_flops(model, x, loss_fn)
    assert (got.forward, got.backward) == (forward, backward)


def test_lora_stack_step_flops_formula():
    """Full step (3L - 1) F; LoRA (2L - 1) F + L 6 n r (d + d) - 2 n d r (no input gradient for the first layer)."""
    from lorakit import add_lora

    n, r, L = 32, 8, 4
    for d in (16, 46, 64, 256):
        F = 2 * n * d * d
        x = torch.randn(n, d)
        full = _stack(d)
        lora = add_lora(_stack(d), ["0", "2", "4", "6"], r=r)
        loss = lambda y: y.pow(2).mean()
        assert count_flops(full, x, loss).total == (3 * L - 1) * F
        assert count_flops(lora, x, loss).total == (2 * L - 1) * F + L * 6 * n * r * (d + d) - 2 * n * d * r
    # the crossover width r (6 - 1/L) = 46 gives equal step FLOPs
    assert count_flops(_stack(46), torch.randn(n, 46), loss).total == \
        count_flops(add_lora(_stack(46), ["0", "2", "4", "6"], r=r), torch.randn(n, 46), loss).total


def test_meta_device_counts_match_a_real_run():
    """FLOPs counted on the meta device (shapes only) equal a real run's: LoRA stack and the seed transformer."""
    import copy

    from lorakit import SeedTransformer, TransformerConfig, add_lora, split_flops

    loss = lambda y: y.pow(2).mean()
    counts = {}
    for device in ("cpu", "meta"):
        with torch.device(device):
            full = _stack(32)
            lora = add_lora(copy.deepcopy(full), ["0", "2", "4", "6"], r=4)
            x = torch.randn(64, 32)
        counts[device] = (count_flops(full, x, loss), count_flops(lora, x, loss), split_flops(lora, x, loss))
    assert counts["cpu"] == counts["meta"]
    cfg = TransformerConfig(d_model=16, nhead=2, num_encoder_layers=1, num_decoder_layers=2,
                            dim_feedforward=32, seq_len=8)
    splits = {}
    for device in ("cpu", "meta"):
        with torch.device(device):
            models = [SeedTransformer(cfg), SeedTransformer(cfg, peft="embedded"), SeedTransformer(cfg, peft="tower")]
            src, tgt = cfg.inputs(device)
        splits[device] = [split_flops(m.train(), (src, tgt), loss) for m in models]
    assert splits["cpu"] == splits["meta"]
    assert splits["cpu"][2].backbone_backward == 0 < splits["cpu"][0].backbone_backward
