"""measure_memory against hand counts (numel * 4 bytes for fp32) and against peft."""
import pytest
import torch
from torch import nn

from lorakit import (
    CachedTower, LoRALinear, SeedTransformer, TransformerConfig, cache_backbone, checkpoint_layers,
    korthikanti_layer_bytes, measure_memory, predict_layer_activations, saved_tensors, train_only,
)

F32 = 4  # bytes per fp32 element


def mlp(frozen_first: bool) -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    model[0].requires_grad_(not frozen_first)
    return model


def test_single_linear_hand_count_and_adam():
    b, d_in, d_out = 5, 8, 3
    layer = nn.Linear(d_in, d_out)
    x = torch.randn(b, d_in)
    report = measure_memory(layer, x, lambda y: y.sum(), torch.optim.Adam(layer.parameters()))
    n = d_in * d_out + d_out
    assert report.parameters == report.gradients == n * F32
    # addmm saves its input x (b, d_in) for the weight gradient; weight.t() is the weight's storage.
    assert report.activations == b * d_in * F32
    # Adam: exp_avg and exp_avg_sq per parameter, plus a 4-byte fp32 step counter per parameter tensor.
    assert report.optimizer_state == 2 * report.gradients + 2 * F32
    assert report.total == 2 * n * F32 + report.optimizer_state + report.activations


def test_each_storage_once_and_frozen_linear_saves_no_input():
    b = 6
    x = torch.randn(b, 8)
    # Frozen first Linear: nothing upstream needs a gradient, so nothing is saved until the last
    # Linear, which saves its input (the ReLU output, (b, 16)).
    frozen = measure_memory(mlp(True), x, lambda y: y.sum())
    assert frozen.activations == b * 16 * F32
    assert frozen.gradients == (16 * 4 + 4) * F32
    # Trainable: x for the first weight, the ReLU output for ReLU's backward and the second
    # weight: the same storage, so counted once.
    full = measure_memory(mlp(False), x, lambda y: y.sum())
    assert full.activations == b * 8 * F32 + b * 16 * F32
    assert full.optimizer_state == 0


def test_repeatable_and_leaves_no_gradients():
    model, x = mlp(False), torch.randn(4, 8)
    opt = torch.optim.Adam(model.parameters())
    first = measure_memory(model, x, lambda y: y.pow(2).mean(), opt)
    assert all(p.grad is None for p in model.parameters())
    assert measure_memory(model, x, lambda y: y.pow(2).mean(), opt) == first


def test_tuple_inputs_and_sgd_without_state():
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, a, c):
            return self.lin(a) * c

    model, a, c = Two(), torch.randn(3, 4), torch.randn(3, 4)
    report = measure_memory(model, (a, c), lambda y: y.sum(), torch.optim.SGD(model.parameters(), lr=0.1))
    assert report.optimizer_state == 0  # plain SGD keeps no state
    # Linear saves a; the product saves c (for d/dy); y itself is not needed.
    assert report.activations == 2 * 3 * 4 * F32


@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_lora_matches_peft(dropout):
    peft = pytest.importorskip("peft")
    b, d, r = 7, 32, 4
    # x needs a gradient, as inside a network with LoRA layers upstream.
    x = torch.randn(b, d, requires_grad=True)
    ours = LoRALinear(nn.Linear(d, d), r=r, dropout=dropout)
    theirs = peft.get_peft_model(
        nn.Sequential(nn.Linear(d, d)),
        peft.LoraConfig(r=r, lora_alpha=8, lora_dropout=dropout, target_modules=["0"]),
    )
    m_ours = measure_memory(ours, x, lambda y: y.sum())
    m_theirs = measure_memory(theirs, x, lambda y: y.sum())
    assert m_ours == m_theirs
    assert m_ours.gradients == r * (d + d) * F32
    if dropout == 0.0:  # lora_A saves x, lora_B saves A x (b, r); the frozen base saves nothing
        assert m_ours.activations == b * (d + r) * F32
    else:  # dropout's mask (fp32 on the CPU) and its output, lora_A's input, both (b, d), replace x
        assert m_ours.activations == b * (2 * d + r) * F32


def test_report_shows_mib_and_frame():
    report = measure_memory(nn.Linear(1024, 256), torch.randn(1, 1024), lambda y: y.sum())
    frame = report.to_frame()
    assert list(frame.index) == ["parameters", "gradients", "optimizer_state", "activations", "total"]
    assert frame.loc["parameters", "bytes"] == (1024 * 256 + 256) * F32
    assert "1,049,600      1.001" in repr(report)  # (1024 * 256 + 256) * 4 bytes = 1.001 MiB


def test_bad_input():
    frozen = nn.Linear(3, 3).requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        measure_memory(frozen, torch.randn(2, 3), lambda y: y.sum())
    with pytest.raises(ValueError, match="scalar"):
        measure_memory(nn.Linear(3, 3), torch.randn(2, 3), lambda y: y)
    with pytest.raises(ValueError, match="inputs must be"):
        measure_memory(nn.Linear(3, 3), "x", lambda y: y.sum())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_counts_match_cpu_and_give_peaks():
    b = 64
    x = torch.randn(b, 8)
    cpu = measure_memory(mlp(False), x, lambda y: y.sum())
    gpu = measure_memory(mlp(False).cuda(), x.cuda(), lambda y: y.sum())
    assert (gpu.parameters, gpu.gradients, gpu.activations) == (cpu.parameters, cpu.gradients, cpu.activations)
    assert gpu.peak_forward >= gpu.parameters + gpu.activations


def test_saved_tensors_by_op_and_module():
    b = 6
    x = torch.randn(b, 8)
    saved = saved_tensors(mlp(False), x, lambda y: y.sum())
    ops = saved.to_frame("op")["bytes"].to_dict()
    # x for the first Linear's weight gradient; the ReLU output, saved by ReLU and again (not
    # counted twice) by the second Linear.
    assert ops == {"AddmmBackward0": b * 8 * F32, "ReluBackward0": b * 16 * F32}
    assert saved.to_frame("module")["bytes"].to_dict() == {"1": b * 16 * F32, "0": b * 8 * F32}
    # The second Linear also saves its weight (as weight.t(), (16, 4)) for the input gradient:
    # a parameter's storage, not counted. The first needs no input gradient, so saves no weight.
    assert [(r.op, r.module, r.shape, r.counted) for r in saved.records] == [
        ("AddmmBackward0", "0", (b, 8), True),
        ("ReluBackward0", "1", (b, 16), True),
        ("AddmmBackward0", "2", (b, 16), False),
        ("AddmmBackward0", "2", (16, 4), False),
    ]
    assert saved.total == measure_memory(mlp(False), x, lambda y: y.sum()).activations
    with pytest.raises(ValueError, match="by must name"):
        saved.to_frame("layer")


def test_saved_tensors_total_matches_on_a_transformer():
    cfg = TransformerConfig(d_model=16, nhead=2, num_encoder_layers=1, num_decoder_layers=2,
                            dim_feedforward=32, seq_len=6)
    torch.manual_seed(0)
    model = train_only(SeedTransformer(cfg), "decoder_layers.0")
    loss_fn = lambda y: y.pow(2).mean()  # noqa: E731
    torch.manual_seed(1)  # the same dropout masks do not matter for bytes, but keep it tidy
    saved = saved_tensors(model, cfg.inputs(), loss_fn)
    assert "?" not in set(r.op for r in saved.records)  # every save found in the graph
    assert saved.total == measure_memory(model, cfg.inputs(), loss_fn).activations


@pytest.mark.parametrize("s,b,h,a", [(1024, 1, 512, 2), (2048, 4, 12288, 96), (7, 3, 10, 5)])
def test_predictor_defaults_are_the_papers_formula(s, b, h, a):
    assert predict_layer_activations(s, b, h, a) == korthikanti_layer_bytes(s, b, h, a)
    assert korthikanti_layer_bytes(s, b, h, a) == pytest.approx(s * b * h * (34 + 5 * a * s / h))


def test_predictor_decoder_layer_hand_count():
    s, b, h, a, f = 4, 1, 8, 2, 16
    got = predict_layer_activations(s, b, h, a, ffn=f, cross_attention=True, ffn_dropout=True,
                                    bytes_per_element=4, bytes_per_mask=4)
    sbh, att = s * b * h, a * s * s * b
    by_hand = 2 * (6 * sbh + 3 * att) + (2 * sbh + 3 * s * b * f) + 3 * sbh  # elements, all 4 bytes
    assert got == 4 * by_hand
    with pytest.raises(ValueError, match="h must be"):
        predict_layer_activations(4, 1, 0, 2)


def test_checkpointing_keeps_only_block_inputs():
    torch.manual_seed(0)
    blocks = nn.Sequential(*[nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 16)) for _ in range(3)])
    x = torch.randn(5, 16)
    plain = measure_memory(blocks, x, lambda y: y.sum())
    assert plain.activations == 3 * 5 * (16 + 64) * F32  # per block: its input and the ReLU output
    torch.manual_seed(0)
    ref = blocks(x).sum()
    ref.backward()
    grads = [p.grad.clone() for p in blocks.parameters()]
    blocks.zero_grad(set_to_none=True)
    checkpoint_layers(blocks)
    assert measure_memory(blocks, x, lambda y: y.sum()).activations == 3 * 5 * 16 * F32  # inputs only
    blocks(x).sum().backward()
    for p, g in zip(blocks.parameters(), grads):
        torch.testing.assert_close(p.grad, g)
    with pytest.raises(ValueError, match="ModuleList"):
        checkpoint_layers(nn.Linear(2, 2))


def test_cached_tower_matches_the_tower_and_needs_less():
    cfg = TransformerConfig(d_model=16, nhead=2, num_encoder_layers=1, num_decoder_layers=3,
                            dim_feedforward=32, dropout=0.0, seq_len=6)
    torch.manual_seed(0)
    model = SeedTransformer(cfg, peft="tower", r=2)
    nn.init.normal_(model.lora_tower.lora_layers[0].lora_B.weight)  # make the tower's output non-zero
    src, tgt = cfg.inputs()
    cache = cache_backbone(model, src, tgt)
    assert cache.nbytes == (1 + 3) * 6 * 16 * F32
    cached = CachedTower(model.lora_tower)
    torch.testing.assert_close(cached(*cache.inputs), model(src, tgt))
    full = measure_memory(model, (src, tgt), lambda y: y.pow(2).mean())
    alone = measure_memory(cached, cache.inputs, lambda y: y.pow(2).mean())
    assert alone.gradients == full.gradients == 3 * 2 * (16 + 16) * F32
    assert alone.activations == full.activations  # the tower saves the same tensors either way
    assert alone.parameters == full.gradients  # no backbone weights needed
    with pytest.raises(ValueError, match="peft='tower'"):
        cache_backbone(SeedTransformer(cfg), src, tgt)
