"""Parameter counts against hand counts and peft."""
import pytest
from torch import nn

from lorakit import ParamCount, count_parameters, lora_param_count


def test_hand_count_seed_000():
    # Seed 000's net: (10*20+20) + (20*30+30) + (30*1+1) = 220 + 630 + 31 = 881.
    net = nn.Sequential(nn.Linear(10, 20), nn.Sigmoid(), nn.Linear(20, 30), nn.Sigmoid(), nn.Linear(30, 1))
    assert count_parameters(net) == ParamCount(total=881, trainable=881)
    net[0].requires_grad_(False)
    c = count_parameters(net)
    assert (c.total, c.trainable, c.frozen) == (881, 661, 220)
    assert c.trainable_fraction == pytest.approx(661 / 881)


def test_shared_parameter_counted_once():
    emb, head = nn.Embedding(100, 8), nn.Linear(8, 100, bias=False)
    head.weight = emb.weight  # tied, as in GPT-2
    assert count_parameters(nn.ModuleList([emb, head])).total == 800


def test_lora_param_count_formula():
    assert lora_param_count(100, 100, 10) == 2_000  # seed 004's example
    assert lora_param_count(4096, 4096, 8) == 65_536
    # The LoRA paper's GPT-3 count: 2 matrices (Wq, Wv) x 96 layers x 2 * 12288 * r with r = 1.
    assert 2 * 96 * lora_param_count(12288, 12288, 1) == 4_718_592


@pytest.mark.parametrize("args", [(0, 3, 1), (3, 3, 0), (3, 3, 1.5), (3, -2, 1)])
def test_lora_param_count_rejects_bad_sizes(args):
    with pytest.raises(ValueError, match="positive integer"):
        lora_param_count(*args)


def test_repr_is_a_readable_row():
    assert repr(ParamCount(total=1000, trainable=10)) == (
        "ParamCount(total=1,000, trainable=10, frozen=990, trainable_fraction=1.0000%)")


# --- lorakit.summary: a per-module table that counts each parameter once -------------------

def test_summarize_peft_model_counts_the_wrapped_linear_once():
    from peft import LoraConfig, get_peft_model

    from lorakit import seed000_mlp
    from lorakit.summary import summarize

    model = get_peft_model(seed000_mlp(), LoraConfig(target_modules=["0"], r=2))
    table = summarize(model)
    assert (table.total, table.trainable) == (941, 60) == (count_parameters(model).total, 60)
    rows = {r.name: (r.params, r.trainable) for r in table.rows}
    assert rows["base_model.model.0.base_layer"] == (220, 0)
    assert "base_model.model.0" not in rows  # the wrapper owns no parameter of its own


def test_summarize_counts_tied_weights_once():
    from lorakit.summary import summarize

    emb, head = nn.Embedding(100, 8), nn.Linear(8, 100, bias=False)
    head.weight = emb.weight
    table = summarize(nn.ModuleList([emb, head]))
    assert table.total == 800 and [r.name for r in table.rows] == ["0"]


def test_where_parameters_live_adds_up_and_splits_a_bert_layer():
    from lorakit.architectures import bert_classifier
    from lorakit.summary import where_parameters_live

    model = bert_classifier("tiny")
    groups = where_parameters_live(model).as_dict()
    assert sum(groups.values()) == count_parameters(model).total
    h, ff = 128, 512
    assert groups["attention"] == 2 * 4 * (h * h + h)
    assert groups["MLP"] == 2 * (h * ff + ff + ff * h + h)
    assert groups["embeddings"] == (30522 + 512 + 2) * h


def test_safetensors_layout_matches_numel_times_element_size(tmp_path):
    import torch
    from safetensors.torch import save_file

    from lorakit.summary import safetensors_layout

    tensors = {"a": torch.zeros(3, 5), "b": torch.zeros(7, dtype=torch.float16)}
    save_file(tensors, tmp_path / "x.safetensors")
    layout = safetensors_layout(tmp_path / "x.safetensors")
    assert layout.data_bytes == 15 * 4 + 7 * 2 and layout.tensors == 2
    assert layout.file_bytes == layout.header_bytes + layout.data_bytes


def _torchsummary_totals(model, input_size):
    """Run torchsummary itself on the CPU and read its printed totals."""
    import contextlib
    import io
    import re

    from torchsummary import summary

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        summary(model, input_size, device="cpu")
    found = dict(re.findall(r"^(Total|Trainable) params: ([\d,]+)$", out.getvalue(), re.M))
    return int(found["Total"].replace(",", "")), int(found["Trainable"].replace(",", ""))


def test_torchsummary_count_reproduces_torchsummary_on_the_seed_000_peft_model():
    from peft import LoraConfig, get_peft_model

    from lorakit import seed000_mlp
    from lorakit.summary import torchsummary_count

    model = get_peft_model(seed000_mlp(), LoraConfig(target_modules=["0"], r=2))
    c = torchsummary_count(model)
    assert (c.total, c.trainable) == _torchsummary_totals(model, (1, 10)) == (1_161, 60)


def test_torchsummary_count_reproduces_the_tied_weight_double_count():
    from lorakit.summary import torchsummary_count

    a, b = nn.Linear(8, 8), nn.Linear(8, 8)
    b.weight = a.weight
    model = nn.Sequential(a, nn.ReLU(), b)
    c = torchsummary_count(model)
    assert (c.total, c.trainable) == _torchsummary_totals(model, (8,)) == (144, 144)
    assert count_parameters(model).total == 80
