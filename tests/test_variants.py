"""The variants chapter's written-out code against peft, and lorakit.variants against both.

The functions are taken from the notebook's own cells (its source, executed here), so that the
page and the test cannot drift apart.
"""
import json
import pathlib

import pytest
import torch
from peft import EvaConfig, LoraConfig, get_peft_model, initialize_lora_eva_weights
from peft.optimizers import create_loraplus_optimizer

from lorakit import variants

NOTEBOOK = pathlib.Path(__file__).parent.parent / "notebooks" / "08_variants.ipynb"
DEFS = ("def small_peft", "def dora_forward", "def pissa_init", "def max_diffs", "def olora_init",
        "def eva_init", "def loraplus_lr")


@pytest.fixture(scope="module")
def page():
    """The namespace of the notebook's definition cells (imports first)."""
    cells = ["".join(c["source"]) for c in json.loads(NOTEBOOK.read_text())["cells"] if c["cell_type"] == "code"]
    ns = {}
    exec("import torch\nimport torch.nn.functional as F\nfrom torch import nn\nfrom collections import OrderedDict\n"
         "from peft import LoraConfig, get_peft_model", ns)
    for prefix in DEFS:
        source = next(c for c in cells if prefix in c)
        for chunk in source.split("\n\n\n"):  # the imports and the def, not the cell's checks
            if chunk.startswith(("def ", "from ", "import ")):
                exec(chunk, ns)
    return ns


def test_dora_output_and_gradients_match_peft(page):
    _, layer, W0 = page["small_peft"](use_dora=True)
    A, B = layer.lora_A["default"].weight, layer.lora_B["default"].weight
    m = layer.lora_magnitude_vector["default"].weight
    assert torch.allclose(m, W0.norm(dim=1))
    with torch.no_grad():
        B.normal_(std=0.1)
        m.mul_(1.5)
    x = torch.randn(16, 32)
    grads = []
    for run in (lambda: page["dora_forward"](x, W0, layer.base_layer.bias, A, B, m, layer.scaling["default"]),
                lambda: layer(x)):
        layer.zero_grad()
        out = run()
        out.square().sum().backward()
        grads.append((out.detach(), torch.cat([p.grad.flatten() for p in (A, B, m)])))
    assert torch.allclose(grads[0][0], grads[1][0], atol=1e-5)
    assert torch.allclose(grads[0][1], grads[1][1], atol=1e-3)


@pytest.mark.parametrize("init,niter", [("pissa", None), ("pissa_niter_4", 4)])
def test_pissa_matches_peft(page, init, niter):
    _, layer, W0 = page["small_peft"](init_lora_weights=init)
    torch.manual_seed(1)
    torch.nn.Linear(32, 4, bias=False), torch.nn.Linear(4, 24, bias=False)  # peft's draws before the SVD
    A, B, W_res = page["pissa_init"](W0, 4, layer.scaling["default"], niter)
    assert torch.allclose(A, layer.lora_A["default"].weight, atol=1e-5)
    assert torch.allclose(B, layer.lora_B["default"].weight, atol=1e-5)
    assert torch.allclose(W_res, layer.base_layer.weight, atol=1e-5)
    assert torch.allclose(W_res + layer.scaling["default"] * B @ A, W0, atol=1e-5)  # output unchanged at init


def test_olora_matches_peft(page):
    _, layer, W0 = page["small_peft"](init_lora_weights="olora")
    A, B, W_res = page["olora_init"](W0, 4, layer.scaling["default"])
    assert torch.allclose(A, layer.lora_A["default"].weight, atol=1e-6)
    assert torch.allclose(B, layer.lora_B["default"].weight, atol=1e-6)
    assert torch.allclose(W_res, layer.base_layer.weight, atol=1e-6)


def test_eva_matches_peft_and_lorakit(page):
    torch.manual_seed(0)
    X = torch.randn(256, 32) * torch.linspace(3, 0.1, 32) + 0.5
    peft_model, layer, _ = page["small_peft"](init_lora_weights="eva", eva_config=EvaConfig(rho=1.0))
    initialize_lora_eva_weights(peft_model, [X], forward_fn=lambda model, batch: model(batch),
                                prepare_model_inputs_fn=None, prepare_layer_inputs_fn=None, show_progress_bar=False)
    ours = page["eva_init"](X, 4)
    cos = (ours * layer.lora_A["default"].weight.detach()).sum(dim=1).abs()
    assert cos.min() > 0.99
    assert torch.equal(variants.principal_directions(X, 4), ours)


def test_rslora_scaling(page):
    _, layer, _ = page["small_peft"](use_rslora=True)
    assert layer.scaling["default"] == 8 / 4 ** 0.5


def test_loraplus_rule_matches_peft_and_lorakit(page):
    peft_model, _, _ = page["small_peft"](bias="lora_only")  # a trainable bias: peft's 1-d rule
    opt = create_loraplus_optimizer(peft_model, torch.optim.AdamW, lr=1e-3, loraplus_lr_ratio=16)
    theirs = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    ours = {id(p): page["loraplus_lr"](n, p, 1e-3, 16) for n, p in peft_model.named_parameters() if p.requires_grad}
    assert ours == theirs and sorted(set(ours.values())) == [1e-3, 16e-3]
    assert [ours[id(p)] for p in peft_model.parameters() if p.requires_grad and p.ndim == 1] == [16e-3]
    groups = variants.variant_groups(peft_model, "LoRA+", 1e-3, 16)
    assert {id(p): g["lr"] for g in groups for p in g["params"]} == theirs
    plain = variants.variant_groups(peft_model, "LoRA", 1e-3)
    assert len(plain) == 1 and len(plain[0]["params"]) == len(ours)


def tiny_bert():
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=16, num_labels=2)
    return BertForSequenceClassification(config)


def test_make_variant_counts_and_eva():
    counts = {}
    for name in variants.VARIANTS:
        x = torch.randint(0, 50, (64, 8))
        model = variants.make_variant(name, tiny_bert(), r=4, eva_data=variants.eva_batches(x, torch.ones_like(x), 16))
        counts[name] = model.get_nb_trainable_parameters()[0]
    lora = 2 * 2 * 4 * (32 + 32) + 32 * 2 + 2  # 2 layers x (query, value) x r (in + out), plus the head
    assert counts["LoRA"] == lora and counts["DoRA"] == lora + 2 * 2 * 32
    assert all(counts[n] == lora for n in variants.VARIANTS if n != "DoRA")
    q = model.base_model.model.bert.encoder.layer[0].attention.self.query  # the last model: LoRA+
    assert q.scaling["default"] == 8 / 4
    eva = variants.make_variant("EVA", tiny_bert(), r=4, eva_data=variants.eva_batches(x, torch.ones_like(x), 16))
    q = eva.base_model.model.bert.encoder.layer[0].attention.self.query
    A = q.lora_A["default"].weight.detach()
    assert torch.allclose(A @ A.T, torch.eye(4), atol=1e-5) and not q.lora_B["default"].weight.any()


def test_config_names_and_interval():
    with pytest.raises(ValueError, match="name must be one of"):
        variants.variant_config("QLoRA")
    assert variants.variant_config("LoRA").modules_to_save == ["classifier"]
    res = variants.VariantResult("x", 1, 0.1, 10, (0.7, 0.8, 0.9))
    lo, hi = res.interval
    assert res.mean == pytest.approx(0.8) and hi - 0.8 == pytest.approx(4.302653 * 0.1 / 3 ** 0.5, rel=1e-6)
    assert (lo + hi) / 2 == pytest.approx(0.8)
    assert variants.VariantResult("y", 1, 0.1, 10, (0.7,)).interval == (0.7, 0.7)
