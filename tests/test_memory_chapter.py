"""The memory chapter's plain-PyTorch count of saved tensors agrees with lorakit's measure_memory.

The chapter writes `saved_bytes` with torch.autograd.graph.saved_tensors_hooks before it uses
`lorakit.measure_memory`; the definition is read from the notebook itself, so they cannot drift apart.
"""
from __future__ import annotations

import json
import pathlib

import pytest
import torch
from torch import nn

from lorakit import SeedTransformer, TransformerConfig, measure_memory, saved_tensors

NOTEBOOK = pathlib.Path(__file__).resolve().parents[1] / "notebooks" / "05_memory.ipynb"


@pytest.fixture(scope="module")
def saved_bytes():
    cells = ["".join(c["source"]) for c in json.loads(NOTEBOOK.read_text())["cells"] if c["cell_type"] == "code"]
    source = next(c for c in cells if c.startswith("def saved_bytes("))
    namespace = {"torch": torch}
    exec(source, namespace)  # noqa: S102 - the book's own code
    return namespace["saved_bytes"]


def small_transformer(peft=None):
    torch.manual_seed(0)
    cfg = TransformerConfig(d_model=32, nhead=2, num_encoder_layers=1, num_decoder_layers=2,
                            dim_feedforward=64, seq_len=16)
    return SeedTransformer(cfg, peft=peft).train(), cfg.inputs()


@pytest.mark.parametrize("peft", [None, "embedded", "tower"])
def test_page_version_matches_measure_memory_on_the_seed_transformer(saved_bytes, peft):
    model, inputs = small_transformer(peft)
    loss = lambda y: y.pow(2).mean()  # noqa: E731
    page = saved_bytes(model, inputs, loss)
    assert page == measure_memory(model, inputs, loss).activations == saved_tensors(model, inputs, loss).total


def test_page_version_on_a_linear_hand_count(saved_bytes):
    x = torch.randn(4, 32, requires_grad=True)
    layer = nn.Linear(32, 16)
    assert saved_bytes(layer, (x,), lambda y: y.sum()) == 4 * 32 * 4  # the input, fp32
    assert saved_bytes(layer.requires_grad_(False), (x,), lambda y: y.sum()) == 0
