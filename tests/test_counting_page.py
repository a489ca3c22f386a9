"""The counting chapter's plain-Python prediction loop agrees with lorakit.predict_lora_params."""
import json
from pathlib import Path

import pytest
import torch

import lorakit
from lorakit import architectures as arch
from lorakit import predict_lora_params

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "03_counting_parameters.ipynb"


def page_function():
    """exec the notebook cell that defines predict_by_hand and return the function."""
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    source = next("".join(c["source"]) for c in cells if c["cell_type"] == "code" and "def predict_by_hand" in "".join(c["source"]))
    definition = source.split("\n\n\nprint(")[0]  # the def only, not the cell's printout
    namespace = {"torch": torch}
    exec(definition, namespace)
    return namespace["predict_by_hand"]


@pytest.mark.parametrize("build, targets", [
    (lorakit.SimpleMLP, ["fc1"]), (lorakit.SimpleMLP, ["fc1", "fc2"]),
    (lambda: arch.bert_classifier("tiny", device="meta"), ["query", "value"]),
    (lambda: arch.bert_classifier("tiny", device="meta"), ["query", "key", "value", "dense"]),
])
@pytest.mark.parametrize("r", [1, 4, 8])
def test_page_loop_matches_lorakit(build, targets, r):
    by_hand = page_function()
    assert by_hand(build(), targets, r) == predict_lora_params(build(), targets, r).trainable
