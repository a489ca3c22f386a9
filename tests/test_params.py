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
