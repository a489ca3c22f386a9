"""The real task's data and model: the shipped file, its checksum, the fixed splits, the tokenized form."""
import gzip
import hashlib
from importlib import resources

import pytest
import torch

from lorakit import pretrained, sentiment, text


def test_file_matches_recorded_sha256_and_counts():
    raw = gzip.decompress(resources.files("lorakit").joinpath("files", sentiment.FILE).read_bytes())
    assert hashlib.sha256(raw).hexdigest() == sentiment.SHA256
    assert len(sentiment.read_snippets()) == 10605  # as the VADER paper's README counts them


def test_splits_are_disjoint_fixed_and_filtered():
    task = sentiment.movie_reviews()
    ids = [set(s.ids) for s in (task.train, task.val, task.test)]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert all(i % 10 == 0 for i in ids[2]) and all(i % 10 == 1 for i in ids[1])
    kept = [s for s in sentiment.read_snippets() if abs(s.valence) >= 0.5]
    assert sum(map(len, ids)) == len(kept)
    for split in (task.train, task.val, task.test):
        assert torch.equal(split.labels, (split.valence > 0).long())
        assert (split.valence.abs() >= 0.5).all()
        assert 0.4 < split.labels[:200].float().mean() < 0.6  # shuffled: a head is not one class
    assert sentiment.movie_reviews().train.ids == task.train.ids


def test_bad_threshold():
    with pytest.raises(ValueError, match="min_abs_valence"):
        sentiment.movie_reviews(4.5)


def test_encode_and_minilm_forward():
    task = sentiment.movie_reviews()
    enc = text.encode(pretrained.minilm_tokenizer(), task.val.head(8), max_length=16)
    assert enc.x.shape == enc.mask.shape and enc.x.shape[0] == 8 and enc.x.shape[1] <= 16
    assert (enc.x[:, 0] == 101).all()  # [CLS]
    model = pretrained.minilm_classifier(num_labels=2)
    assert sum(p.numel() for p in model.bert.parameters()) == 22_713_216  # all-MiniLM-L6-v2's body
    twin = pretrained.minilm_classifier(num_labels=2, pretrained=False)
    assert not torch.equal(model.bert.embeddings.word_embeddings.weight, twin.bert.embeddings.word_embeddings.weight)
    logits = model(enc.x, enc.mask).logits
    assert logits.shape == (8, 2)
