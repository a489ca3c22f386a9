"""Baselines for a text classifier: majority class, TF-IDF + logistic regression, probes on frozen features."""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ._args import check_int, model_device
from .models import LoRATower
from .training import Evaluation


def _evaluation(probabilities: np.ndarray, labels: np.ndarray) -> Evaluation:
    """Mean cross-entropy and correct argmax predictions of class probabilities (n, k)."""
    p = np.clip(probabilities[np.arange(len(labels)), labels], 1e-12, 1.0)
    correct = int((probabilities.argmax(1) == labels).sum())
    return Evaluation(loss=float(-np.log(p).mean()), correct=correct, n=len(labels))


def majority_class(train_labels, test_labels) -> Evaluation:
    """Always answer the training split's most frequent label (loss: its training frequency)."""
    y_train, y_test = np.asarray(train_labels), np.asarray(test_labels)
    freq = np.bincount(y_train, minlength=int(max(y_train.max(), y_test.max())) + 1) / len(y_train)
    return _evaluation(np.tile(freq, (len(y_test), 1)), y_test)


def tfidf_logistic(train_texts, train_labels, test_texts, test_labels, c: float = 1.0) -> Evaluation:
    """TF-IDF of words and word pairs, then L2-regularised logistic regression (scikit-learn)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    clf = LogisticRegression(C=c, max_iter=1000).fit(vectorizer.fit_transform(train_texts), np.asarray(train_labels))
    return _evaluation(clf.predict_proba(vectorizer.transform(test_texts)), np.asarray(test_labels))


def logistic_probe(train_x, train_labels, test_x, test_labels, c: float = 1.0) -> Evaluation:
    """L2-regularised logistic regression on fixed feature vectors (n, d), standardised first."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
    clf.fit(np.asarray(train_x, dtype=np.float64), np.asarray(train_labels))
    return _evaluation(clf.predict_proba(np.asarray(test_x, dtype=np.float64)), np.asarray(test_labels))


@torch.no_grad()
def pooled_states(bert: nn.Module, encoded, batch_size: int = 64) -> torch.Tensor:
    """Every layer's hidden states mean-pooled over real tokens: (n, num_layers + 1, hidden), on the CPU.

    Index 0 is the embeddings' output, index i the output of layer i (a transformers BertModel
    with output_hidden_states); eval mode, so no dropout.
    """
    check_int("batch_size", batch_size)
    device, was_training = model_device(bert), bert.training
    bert.eval()
    out = []
    for i in range(0, len(encoded.y), batch_size):
        x, mask = encoded.x[i:i + batch_size].to(device), encoded.mask[i:i + batch_size].to(device)
        hidden = bert(input_ids=x, attention_mask=mask, output_hidden_states=True).hidden_states
        m = mask[:, None, :, None].float()  # (b, 1, L, 1)
        states = torch.stack(hidden, dim=1)  # (b, layers + 1, L, h)
        out.append(((states * m).sum(2) / m.sum(2)).cpu())
    bert.train(was_training)
    return torch.cat(out)


class PooledTower(nn.Module):
    """The memory chapter's decoupled LoRA tower on a frozen BERT's pooled layer outputs, then a head.

    Input: pooled_states (n, L + 1, h). The tower reads layers 1..L (layer i's output plus the
    tower's previous output, as `LoRATower` does); its output is added to the last layer's and a
    Linear head classifies the sum. No gradient can reach the backbone: it ran once, without autograd.
    """

    def __init__(self, num_layers: int, hidden: int, num_labels: int, r: int = 8, alpha: float = 8.0):
        super().__init__()
        self.tower = LoRATower(num_layers, hidden, r, alpha)
        self.classifier = nn.Linear(hidden, num_labels)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        layers = list(states[:, 1:].unbind(1))  # L tensors (b, h)
        return self.classifier(states[:, -1] + self.tower(layers))


def t_interval(differences, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean of paired differences and its Student-t confidence interval (low, high); needs n >= 2."""
    d = np.asarray(differences, dtype=np.float64)
    if d.size < 2:
        raise ValueError(f"a t-interval needs at least 2 paired differences, got {d.size}")
    from scipy import stats

    half = stats.t.ppf(0.5 + confidence / 2, d.size - 1) * d.std(ddof=1) / math.sqrt(d.size)
    return float(d.mean()), float(d.mean() - half), float(d.mean() + half)
