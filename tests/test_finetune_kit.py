"""protocol, baselines and train's early stopping, against independent references."""
import math

import numpy as np
import pytest
import torch
from torch import nn

import lorakit
from lorakit import baselines
from lorakit.protocol import PROTOCOLS, Protocol, protocol
from lorakit.training import train


def _blobs(n=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    return torch.randn(n, 4, generator=g) * 0.5 + (2 * y[:, None] - 1), y


def test_protocol_per_scale(monkeypatch):
    monkeypatch.setenv("LORAKIT_SCALE", "ci")
    assert protocol() is PROTOCOLS["ci"] and isinstance(protocol(), Protocol)
    assert protocol("full").train == 8087  # every training snippet of lorakit.movie_reviews()
    for p in PROTOCOLS.values():
        assert p.train <= 8087 and p.val <= 978 and p.test <= 1007 and len(p.seeds) >= 2
        assert set(PROTOCOLS["ci"].ranks) <= set(PROTOCOLS["full"].ranks)
    with pytest.raises(ValueError, match="scale"):
        protocol("huge")


def test_majority_class_and_its_loss():
    ev = baselines.majority_class([1, 1, 1, 0], [1, 0, 1, 1])
    assert ev.correct == 3 and ev.n == 4
    assert ev.loss == pytest.approx(-(3 * math.log(0.75) + math.log(0.25)) / 4)


def test_tfidf_logistic_learns_words():
    train_texts = ["good fun", "great good", "bad dull", "awful bad"] * 5
    labels = [1, 1, 0, 0] * 5
    ev = baselines.tfidf_logistic(train_texts, labels, ["good", "bad"], [1, 0], c=10.0)
    assert ev.accuracy == 1.0


def test_logistic_probe_matches_sklearn():
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x, y = _blobs(200, 0)
    xt, yt = _blobs(100, 1)
    ev = baselines.logistic_probe(x, y, xt, yt)
    scaler = StandardScaler().fit(x.numpy().astype(np.float64))
    ref = LogisticRegression(max_iter=2000).fit(scaler.transform(x.numpy().astype(np.float64)), y.numpy())
    assert ev.correct == int((ref.predict(scaler.transform(xt.numpy().astype(np.float64))) == yt.numpy()).sum())


def test_t_interval_against_scipy():
    from scipy import stats

    d = [1.0, -2.0, 3.5, 0.5]
    mean, low, high = baselines.t_interval(d)
    ref = stats.t.interval(0.95, 3, loc=np.mean(d), scale=stats.sem(d))
    assert mean == pytest.approx(np.mean(d)) and (low, high) == pytest.approx(ref)
    with pytest.raises(ValueError, match="2"):
        baselines.t_interval([1.0])


def test_pooled_states_mean_over_real_tokens_only():
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    bert = BertModel(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                intermediate_size=32)).eval()
    x = torch.tensor([[1, 5, 7, 2], [1, 9, 2, 0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    enc = lorakit.Encoded(x, mask, torch.tensor([0, 1]))
    states = baselines.pooled_states(bert, enc, batch_size=1)
    assert states.shape == (2, 3, 16)
    with torch.no_grad():
        last = bert(input_ids=x[1:, :3], attention_mask=mask[1:, :3]).last_hidden_state  # no padding at all
    torch.testing.assert_close(states[1, -1], last[0].mean(0), rtol=1e-4, atol=1e-5)


def test_pooled_tower_starts_as_a_head_on_the_last_layer_and_is_linear():
    torch.manual_seed(0)
    model = baselines.PooledTower(num_layers=3, hidden=8, num_labels=2, r=2)
    s = torch.randn(5, 4, 8)
    torch.testing.assert_close(model(s), model.classifier(s[:, -1]))  # B = 0: the tower adds nothing yet
    for layer in model.tower.lora_layers:
        nn.init.normal_(layer.lora_B.weight)
    s2 = torch.randn(5, 4, 8)
    bias = model.classifier.bias
    torch.testing.assert_close(model(s + s2) - bias, (model(s) - bias) + (model(s2) - bias), rtol=1e-4, atol=1e-4)
    assert sum(p.numel() for p in model.tower.parameters()) == 3 * lorakit.lora_param_count(8, 8, 2)


def test_early_stopping_keeps_the_best_epoch_and_its_weights():
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    history = train(model, _blobs(200, 0), _blobs(100, 1), epochs=20, lr=0.5, batch_size=200,
                    schedule="constant", patience=1, test_data=_blobs(100, 2))
    assert len(history.records) < 20  # stopped: accuracy on easy blobs saturates
    best = history.best
    assert best.val_accuracy == max(r.val_accuracy for r in history.records)
    assert lorakit.evaluate(model, _blobs(100, 1)).accuracy == best.val_accuracy  # best weights put back
    assert all(not math.isnan(r.test_accuracy) for r in history.records)


def test_without_test_data_the_test_fields_are_nan():
    torch.manual_seed(0)
    history = train(nn.Linear(4, 2), _blobs(), _blobs(seed=1), epochs=1, lr=0.1)
    assert math.isnan(history.final.test_accuracy) and math.isnan(history.final.test_loss)


def test_hub_classifier_loads_the_shipped_model_offline(monkeypatch):
    from lorakit import pretrained

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tokenizer, model = pretrained.hub_classifier(pretrained.minilm_dir(), num_labels=2, seed=0)
    reference = pretrained.minilm_classifier(num_labels=2, seed=0)
    assert type(model).__name__ == "BertForSequenceClassification"
    ref_state = reference.state_dict()
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, ref_state[name]), name  # same body, and the same seeded head
    assert tokenizer("a good film")["input_ids"][0] == tokenizer.cls_token_id
    assert set(pretrained.SLIDES_MODELS) == {"BERT-Tiny", "BERT-Base"}


def test_mean_pooled_minilm_is_sentence_transformers_embedding():
    """The mean-pooled body is what sentence-transformers computes for all-MiniLM-L6-v2 (before its
    final normalisation), an independent reference; the head is seeded and the loss is cross-entropy."""
    from sentence_transformers import SentenceTransformer

    from lorakit import pretrained

    texts = ["a gripping, funny film", "dull.", "the plot goes nowhere and the actors know it"]
    tok = pretrained.minilm_tokenizer()
    model = pretrained.minilm_classifier(num_labels=2, seed=3, pooling="mean").eval()
    assert not any("pooler" in n for n, _ in model.named_parameters())
    batch = tok(texts, padding=True, return_tensors="pt")
    captured = {}
    model.classifier.register_forward_hook(lambda m, args, out: captured.setdefault("pooled", args[0]))
    labels = torch.tensor([1, 0, 0])
    with torch.no_grad():
        out = model(batch["input_ids"], batch["attention_mask"], labels=labels)
        reference = SentenceTransformer(str(pretrained.minilm_dir()), device="cpu").encode(
            texts, convert_to_tensor=True, normalize_embeddings=True)
    ours = torch.nn.functional.normalize(captured["pooled"], dim=-1)
    torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out.loss, torch.nn.functional.cross_entropy(out.logits, labels))
    again = pretrained.minilm_classifier(num_labels=2, seed=3, pooling="mean")
    assert torch.equal(again.classifier.weight, model.classifier.weight)
    twin = pretrained.minilm_classifier(num_labels=2, pretrained=False, seed=3, pooling="mean")
    assert lorakit.count_parameters(twin).total == lorakit.count_parameters(model).total
    with pytest.raises(ValueError, match="pooling"):
        pretrained.minilm_classifier(pooling="max")


def test_early_stopping_restores_only_what_trains_and_leaves_the_frozen_part():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    model[0].requires_grad_(False)
    frozen = model[0].weight.clone()
    history = train(model, _blobs(200, 0), _blobs(100, 1), epochs=20, lr=0.5, batch_size=200,
                    schedule="constant", patience=1)
    assert torch.equal(model[0].weight, frozen)
    assert lorakit.evaluate(model, _blobs(100, 1)).accuracy == history.best.val_accuracy


def test_param_groups_set_their_own_learning_rates():
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    weight, bias = model.weight.detach().clone(), model.bias.detach().clone()
    groups = [{"params": [model.weight], "lr": 0.0}, {"params": [model.bias], "lr": 0.1}]
    train(model, _blobs(), _blobs(seed=1), epochs=1, lr=0.5, schedule="constant", param_groups=groups)
    assert torch.equal(model.weight, weight) and not torch.equal(model.bias, bias)
