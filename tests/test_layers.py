"""LoRALinear and add_lora against peft's lora.Linear and get_peft_model."""
import pytest
import torch
from peft import LoraConfig, get_peft_model
from torch import nn

from lorakit import LoRALinear, add_lora, count_parameters


def peft_pair(d_in, d_out, r, alpha, seed=0):
    """A peft lora.Linear with a non-zero B, and a LoRALinear holding the same weights."""
    torch.manual_seed(seed)
    peft_model = get_peft_model(nn.Sequential(nn.Linear(d_in, d_out)),
                                LoraConfig(target_modules=["0"], r=r, lora_alpha=alpha))
    ref = peft_model.base_model.model[0]
    nn.init.normal_(ref.lora_B["default"].weight)
    ours = LoRALinear(nn.Linear(d_in, d_out), r=r, alpha=alpha)
    ours.base.load_state_dict(ref.base_layer.state_dict())
    ours.lora_A.load_state_dict(ref.lora_A["default"].state_dict())
    ours.lora_B.load_state_dict(ref.lora_B["default"].state_dict())
    return ours, ref


@pytest.mark.parametrize("d_in,d_out,r,alpha", [(10, 20, 4, 16), (64, 32, 8, 8), (7, 300, 1, 3.5)])
def test_same_numerics_as_peft(d_in, d_out, r, alpha):
    ours, ref = peft_pair(d_in, d_out, r, alpha)
    x = torch.randn(3, 5, d_in)
    assert ours.scaling == ref.scaling["default"] == alpha / r
    assert torch.equal(ours(x), ref(x))
    assert torch.equal(ours.delta_weight(), ref.get_delta_weight("default"))
    ours.merge(), ref.merge()
    assert ours.merged and ref.merged
    assert torch.equal(ours.base.weight, ref.base_layer.weight)
    assert torch.equal(ours(x), ref(x))
    ours.unmerge(), ref.unmerge()
    assert torch.equal(ours.base.weight, ref.base_layer.weight)


def test_starts_as_base_and_has_paper_shapes():
    base = nn.Linear(12, 6)
    x = torch.randn(4, 12)
    expected = base(x)
    layer = LoRALinear(base, r=3)
    assert layer.lora_A.weight.shape == (3, 12) and layer.lora_B.weight.shape == (6, 3)
    assert torch.equal(layer(x), expected)  # B = 0 at init
    assert not layer.base.weight.requires_grad and layer.lora_A.weight.requires_grad


def test_merge_round_trip_and_misuse():
    layer, _ = peft_pair(16, 16, 4, 8)
    w0 = layer.base.weight.clone()
    x = torch.randn(2, 16)
    before = layer(x)
    layer.merge()
    torch.testing.assert_close(layer(x), before)
    with pytest.raises(RuntimeError, match="already merged"):
        layer.merge()
    layer.unmerge()
    torch.testing.assert_close(layer.base.weight, w0)
    with pytest.raises(RuntimeError, match="not merged"):
        layer.unmerge()


class SimpleMLP(nn.Module):
    """Seed 003's model: 10 -> 20 -> 2, 262 parameters."""

    def __init__(self):
        super().__init__()
        self.fc1, self.relu, self.fc2 = nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 2)

    def forward(self, x):
        return self.fc2(self.relu(self.fc1(x)))


@pytest.mark.parametrize("targets,expected", [(["fc1"], 120), (["fc1", "fc2"], 208)])
def test_trainable_counts_match_peft(targets, expected):
    ref = get_peft_model(SimpleMLP(), LoraConfig(r=4, lora_alpha=16, target_modules=targets))
    ours = add_lora(SimpleMLP(), targets, r=4, alpha=16)
    trainable, total = ref.get_nb_trainable_parameters()
    assert (trainable, total) == (expected, 262 + expected)  # seed 003's counts
    count = count_parameters(ours)
    assert (count.trainable, count.total) == (trainable, total)


def test_suffix_matching_like_peft():
    # A list entry matches the full name or a name ending in "." + entry, never a bare suffix.
    model = nn.ModuleDict({"block": nn.ModuleDict({"q": nn.Linear(4, 4), "qq": nn.Linear(4, 4)})})
    add_lora(model, ["q"], r=2)
    assert isinstance(model["block"]["q"], LoRALinear)
    assert isinstance(model["block"]["qq"], nn.Linear) and not isinstance(model["block"]["qq"], LoRALinear)
    add_lora(model, ["block.qq"], r=2)
    assert isinstance(model["block"]["qq"], LoRALinear)


def test_freezes_everything_else():
    model = add_lora(SimpleMLP(), ["fc1"], r=2)
    trainable = sorted(n for n, p in model.named_parameters() if p.requires_grad)
    assert trainable == ["fc1.lora_A.weight", "fc1.lora_B.weight"]


@pytest.mark.parametrize("r", [0, -1, 2.0, "4", True, None])
def test_bad_rank(r):
    with pytest.raises(ValueError, match="positive integer"):
        LoRALinear(nn.Linear(3, 3), r=r)
    with pytest.raises(ValueError, match="positive integer"):
        add_lora(SimpleMLP(), ["fc1"], r=r)


def test_target_that_matches_nothing_names_modules():
    with pytest.raises(ValueError, match=r"'fc3' matches no module.*'fc1'"):
        add_lora(SimpleMLP(), ["fc1", "fc3"], r=2)


def test_target_that_is_not_linear():
    with pytest.raises(ValueError, match="'relu' is a ReLU, not an nn.Linear"):
        add_lora(SimpleMLP(), ["relu"], r=2)


def test_wraps_only_linear():
    with pytest.raises(ValueError, match="Conv1d"):
        LoRALinear(nn.Conv1d(2, 2, 1), r=1)


def test_meta_device():
    with torch.device("meta"):
        model = SimpleMLP()
    add_lora(model, ["fc1"], r=4)
    assert model.fc1.lora_A.weight.is_meta
    assert count_parameters(model).trainable == 120


def test_second_add_lora_keeps_first_adapters_trainable():
    model = add_lora(add_lora(SimpleMLP(), ["fc1"], r=2), ["fc2"], r=2)
    trainable = sorted(n for n, p in model.named_parameters() if p.requires_grad)
    assert trainable == ["fc1.lora_A.weight", "fc1.lora_B.weight", "fc2.lora_A.weight", "fc2.lora_B.weight"]
    assert count_parameters(model).trainable == 2 * (10 + 20) + 2 * (20 + 2)


def test_fp32_adapter_on_bf16_base_returns_base_dtype_like_peft():
    ours, ref = peft_pair(16, 8, 4, 8)
    ours.base.to(torch.bfloat16), ref.base_layer.to(torch.bfloat16)
    x = torch.randn(3, 16, dtype=torch.bfloat16)
    assert ours(x).dtype == ref(x).dtype == torch.bfloat16
    assert torch.equal(ours(x), ref(x))


def test_dropout_matches_peft_in_train_mode():
    torch.manual_seed(0)
    ref_model = get_peft_model(nn.Sequential(nn.Linear(12, 6)),
                               LoraConfig(target_modules=["0"], r=3, lora_alpha=6, lora_dropout=0.5))
    ref = ref_model.base_model.model[0]
    nn.init.normal_(ref.lora_B["default"].weight)
    ours = LoRALinear(nn.Linear(12, 6), r=3, alpha=6, dropout=0.5)
    ours.base.load_state_dict(ref.base_layer.state_dict())
    ours.lora_A.load_state_dict(ref.lora_A["default"].state_dict())
    ours.lora_B.load_state_dict(ref.lora_B["default"].state_dict())
    ours.train(), ref.train()
    x = torch.randn(4, 12)
    torch.manual_seed(1)
    y_ours = ours(x)
    torch.manual_seed(1)
    y_ref = ref(x)  # the same dropout mask from the same generator state
    assert torch.equal(y_ours, y_ref)
    assert not torch.equal(y_ours, ours.eval()(x))  # dropout did act in train mode
