"""The architecture builders against hand-derived parameter formulas."""
import pytest
import torch

from lorakit import count_parameters
from lorakit.architectures import bert_classifier, gpt3_175b, llama_7b


def bert_params(L, h, ff, vocab=30522, positions=512, types=2, labels=2) -> int:
    """BERT by hand: embeddings + LayerNorm, L layers, pooler, classifier."""
    embeddings = (vocab + positions + types) * h + 2 * h
    layer = 4 * (h * h + h) + 2 * h + (h * ff + ff) + (ff * h + h) + 2 * h
    return embeddings + L * layer + (h * h + h) + (h * labels + labels)


def test_bert_tiny_and_base_totals():
    assert count_parameters(bert_classifier("tiny")).total == bert_params(2, 128, 512) == 4_386_178
    assert count_parameters(bert_classifier("base", device="meta")).total == bert_params(12, 768, 3072)


def test_llama_7b_total_on_meta():
    model = llama_7b()
    assert all(p.device.type == "meta" for p in model.parameters())
    d, L, ff, V = 4096, 32, 11008, 32000
    # untied embed_tokens and lm_head; per layer q, k, v, o (no bias), gate, up, down, 2 RMSNorms; final norm
    assert count_parameters(model).total == 2 * V * d + L * (4 * d * d + 3 * d * ff + 2 * d) + d == 6_738_415_616


def test_gpt3_totals_fused_and_separate():
    d, L, V, n_ctx = 12288, 96, 50257, 2048
    # per layer: attention 4d^2 + 4d, MLP 8d^2 + 5d, 2 LayerNorms 4d; tied embeddings; final LayerNorm
    gpt3 = 12 * L * d * d + 13 * L * d + V * d + n_ctx * d + 2 * d
    assert count_parameters(gpt3_175b("fused")).total == gpt3 == 174_604_259_328
    # OPT keeps 2 extra learned positions (its position ids start at 2)
    assert count_parameters(gpt3_175b("separate")).total == gpt3 + 2 * d


def test_bad_arguments():
    with pytest.raises(ValueError, match="size"):
        bert_classifier("large")
    with pytest.raises(ValueError, match="attention"):
        gpt3_175b("grouped")


def test_real_bert_tiny_is_on_cpu_and_runs():
    model = bert_classifier("tiny").eval()
    logits = model(input_ids=torch.tensor([[101, 2023, 102]])).logits
    assert logits.shape == (1, 2)
