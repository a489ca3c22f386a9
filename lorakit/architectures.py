"""Transformers architectures built from their configs (no download), on the meta device when only shapes matter."""
from __future__ import annotations

import torch
from torch import nn

# BertConfig's defaults are BERT-Base (12 layers, hidden 768, 12 heads, intermediate 3072,
# vocab 30522, 512 positions); BERT-Tiny keeps the vocabulary and shrinks the rest.
BERT_SIZES = {
    "tiny": dict(num_hidden_layers=2, hidden_size=128, num_attention_heads=2, intermediate_size=512),
    "base": dict(num_hidden_layers=12, hidden_size=768, num_attention_heads=12, intermediate_size=3072),
}
# LLaMA-7B (Touvron et al. 2023): what LlamaConfig needs besides its defaults.
LLAMA_7B = dict(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, intermediate_size=11008,
                vocab_size=32000)
# GPT-3 175B (Brown et al. 2020, Table 2.1): 96 layers, d_model 12288, 96 heads of 128, context 2048,
# GPT-2's BPE vocabulary of 50257, feed-forward 4 * d_model.
GPT3_175B = dict(num_layers=96, d_model=12288, num_heads=96, vocab_size=50257, context=2048)


def _build(cls, config, device: str | torch.device) -> nn.Module:
    """Instantiate cls(config) with its tensors created on `device` ("meta": shapes only, no memory)."""
    with torch.device(device):
        return cls(config)


def bert_classifier(size: str = "tiny", num_labels: int = 2, device: str | torch.device = "cpu") -> nn.Module:
    """A BertForSequenceClassification of BERT-Tiny's or BERT-Base's size, randomly initialised."""
    from transformers import BertConfig, BertForSequenceClassification

    if size not in BERT_SIZES:
        raise ValueError(f"size must be one of {sorted(BERT_SIZES)}, got {size!r}")
    return _build(BertForSequenceClassification, BertConfig(num_labels=num_labels, **BERT_SIZES[size]), device)


def llama_7b(device: str | torch.device = "meta") -> nn.Module:
    """A LlamaForCausalLM of LLaMA-7B's shape (6.7B parameters: build it on meta)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    return _build(LlamaForCausalLM, LlamaConfig(**LLAMA_7B), device)


def gpt3_175b(attention: str = "fused", device: str | torch.device = "meta") -> nn.Module:
    """A model of GPT-3 175B's shape: "fused" is GPT-2's architecture (GPT-3's own, one c_attn for q, k, v);
    "separate" is OPT's (OPT-175B copies GPT-3's sizes; q_proj, k_proj, v_proj are separate Linears)."""
    from transformers import GPT2Config, GPT2LMHeadModel, OPTConfig, OPTForCausalLM

    g = GPT3_175B
    if attention == "fused":
        config = GPT2Config(n_layer=g["num_layers"], n_embd=g["d_model"], n_head=g["num_heads"],
                            vocab_size=g["vocab_size"], n_positions=g["context"])
        return _build(GPT2LMHeadModel, config, device)
    if attention == "separate":
        config = OPTConfig(num_hidden_layers=g["num_layers"], hidden_size=g["d_model"],
                           num_attention_heads=g["num_heads"], ffn_dim=4 * g["d_model"],
                           word_embed_proj_dim=g["d_model"], vocab_size=g["vocab_size"],
                           max_position_embeddings=g["context"])
        return _build(OPTForCausalLM, config, device)
    raise ValueError(f"attention must be 'fused' or 'separate', got {attention!r}")
