"""The math chapter's inline code agrees with lorakit and PyTorch.

The chapter writes LoRA from scratch (class `LoRA`) and counts FLOPs with FlopCounterMode in plain
PyTorch (`forward_flops`) before it uses `lorakit.LoRALinear` and `lorakit.count_flops`. The
definitions are read from the notebook itself, so the page and this test cannot drift apart.
"""
from __future__ import annotations

import json
import pathlib

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lorakit import LoRALinear, count_flops

NOTEBOOK = pathlib.Path(__file__).resolve().parents[1] / "notebooks" / "01_math_of_lora.ipynb"


def page_definitions() -> dict:
    """Execute the notebook cells that define `LoRA`, `merged_linear` and `forward_flops`; return the names."""
    cells = ["".join(c["source"]) for c in json.loads(NOTEBOOK.read_text())["cells"] if c["cell_type"] == "code"]
    wanted = ("class LoRA(nn.Module)", "def merged_linear(", "def forward_flops(")
    namespace = {"torch": torch, "nn": nn, "F": F}
    for marker in wanted:
        source = next(c for c in cells if marker in c)
        # Only the definitions: the cell's statements after them use the chapter's other variables.
        kept = []
        for line in source.splitlines():
            if kept and line and not line[0].isspace() and not line.startswith(("def ", "class ", "from ", "import ", "@")):
                break
            if kept or line.startswith(("def ", "class ", "from ", "import ")):
                kept.append(line)
        exec("\n".join(kept), namespace)  # noqa: S102 - the book's own code
    return namespace


@pytest.fixture(scope="module")
def page():
    return page_definitions()


def pair(page, d_in, d_out, r, alpha, rslora=False, seed=0):
    """The page's LoRA with a random B, and a LoRALinear holding the same weights."""
    torch.manual_seed(seed)
    scratch = page["LoRA"](nn.Linear(d_in, d_out), r=r, alpha=alpha, rslora=rslora)
    nn.init.normal_(scratch.B)
    ours = LoRALinear(nn.Linear(d_in, d_out), r=r, alpha=alpha)
    ours.base.load_state_dict(scratch.base.state_dict())
    ours.lora_A.weight.data.copy_(scratch.A.data)
    ours.lora_B.weight.data.copy_(scratch.B.data)
    return scratch, ours


@pytest.mark.parametrize("d_in,d_out,r,alpha", [(48, 24, 4, 16), (100, 100, 10, 8), (7, 300, 1, 3.5)])
def test_page_layer_matches_lorakit(page, d_in, d_out, r, alpha):
    scratch, ours = pair(page, d_in, d_out, r, alpha)
    x = torch.randn(3, 5, d_in)
    assert scratch.scaling == ours.scaling == alpha / r
    torch.testing.assert_close(scratch(x), ours(x))
    torch.testing.assert_close(scratch.scaling * scratch.B @ scratch.A, ours.delta_weight())
    merged = page["merged_linear"](scratch)
    ours.merge()
    torch.testing.assert_close(merged.weight, ours.base.weight)
    torch.testing.assert_close(merged(x), ours(x))


def test_page_layer_starts_as_base_and_trains_only_A_B(page):
    base = nn.Linear(12, 6)
    x = torch.randn(4, 12)
    expected = base(x)
    layer = page["LoRA"](base, r=3)
    assert torch.equal(layer(x), expected)  # B = 0 at init
    assert layer.A.shape == (3, 12) and layer.B.shape == (6, 3)
    assert [n for n, p in layer.named_parameters() if p.requires_grad] == ["A", "B"]
    bound = 1 / 12**0.5  # Kaiming-uniform with a = sqrt(5): U(-1/sqrt(d_in), 1/sqrt(d_in)), as nn.Linear
    assert layer.A.abs().max() <= bound


def test_page_rslora_scaling_matches_peft(page):
    from peft import LoraConfig, get_peft_model

    layer = page["LoRA"](nn.Linear(20, 10), r=16, alpha=8, rslora=True)
    model = get_peft_model(nn.Sequential(nn.Linear(20, 10)),
                           LoraConfig(target_modules=["0"], r=16, lora_alpha=8, use_rslora=True))
    assert layer.scaling == pytest.approx(model.base_model.model[0].scaling["default"])


@pytest.mark.parametrize("shape", [(32, 100), (4, 7, 48)])
def test_page_flop_counter_matches_count_flops(page, shape):
    scratch, ours = pair(page, shape[-1], 24, 4, 16)
    x = torch.randn(*shape)
    for module in (scratch, ours, scratch.base):
        assert page["forward_flops"](module, x) == count_flops(module, x).forward
    rows = x.numel() // shape[-1]
    assert page["forward_flops"](scratch, x) == 2 * rows * (shape[-1] * 24 + 4 * (shape[-1] + 24))
