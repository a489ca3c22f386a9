"""The train/evaluate loop against hand computations with PyTorch itself."""
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lorakit.training import EpochRecord, History, evaluate, mean_history, predict, train


def _blobs(n: int = 200, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    # Two Gaussian blobs in 4-d, centred at -1 and +1: a linear model can separate them.
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.randn(n, 4, generator=g) * 0.5 + (2 * y[:, None] - 1)
    return x, y


def test_loss_falls_and_accuracy_rises_on_a_tiny_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    history = train(model, _blobs(seed=0), _blobs(seed=1), epochs=5, lr=1e-2, batch_size=16)
    assert [r.epoch for r in history.records] == [1, 2, 3, 4, 5]
    assert history.final.train_loss < 0.5 * history.records[0].train_loss
    assert history.final.val_accuracy > 0.95
    assert all(r.seconds > 0 for r in history.records)


def test_evaluate_matches_a_hand_computation():
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    x, y = torch.randn(50, 4), torch.randint(0, 3, (50,))
    result = evaluate(model, (x, y), batch_size=7)  # batches of 7, the last one of 1
    with torch.no_grad():
        logits = model(x)
    assert result.loss == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-5)
    assert result.correct == int((logits.argmax(1) == y).sum()) and result.n == 50
    assert result.accuracy == result.correct / 50
    assert torch.allclose(predict(model, x, batch_size=7), logits)


def test_predict_gets_right_exactly_the_examples_evaluate_counts_on_masked_text():
    # The variants chapter reads a run's test accuracy from predict's right answers instead of evaluating
    # again: both must see the same logits, the attention mask included.
    class Pooled(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb, self.head = nn.Embedding(50, 8), nn.Linear(8, 2)

        def forward(self, ids, mask):
            m = mask.unsqueeze(-1).float()
            return self.head((self.emb(ids) * m).sum(1) / m.sum(1))

    torch.manual_seed(0)
    ids, mask = torch.randint(0, 50, (300, 6)), (torch.rand(300, 6) > 0.3).long()
    mask[:, 0] = 1
    data = SimpleNamespace(x=ids, y=torch.randint(0, 2, (300,)), mask=mask)
    model = Pooled()
    right = predict(model, ids, mask=mask).argmax(-1) == data.y  # batches of 256: two here
    result = evaluate(model, data)
    assert result.correct == int(right.sum()) and result.accuracy == int(right.sum()) / len(data.y)
    assert 0 < result.correct < 300
    padded = ids.masked_fill(mask == 0, 0)  # what the mask hides does not count: predict passes it on
    assert torch.equal(predict(model, padded, mask=mask), predict(model, ids, mask=mask))


def test_evaluate_uses_eval_mode_and_restores_training_mode():
    model = nn.Sequential(nn.Linear(4, 2), nn.Dropout(0.9))
    model.train()
    x, y = _blobs()
    a, b = evaluate(model, (x, y)), evaluate(model, (x, y))
    assert a == b  # no dropout while evaluating, so repeatable
    assert model.training


def test_reads_logits_of_a_transformers_style_output():
    class Wrapped(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = nn.Linear(4, 2)

        def forward(self, x):
            return SimpleNamespace(logits=self.inner(x))

    torch.manual_seed(0)
    wrapped = Wrapped()
    x, y = _blobs()
    assert evaluate(wrapped, (x, y)) == evaluate(wrapped.inner, (x, y))


def test_same_seed_same_run_and_frozen_parameters_stay():
    def run():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        model[0].requires_grad_(False)
        before = model[0].weight.clone()
        history = train(model, _blobs(), _blobs(seed=1), epochs=2, lr=1e-2, seed=7)
        assert torch.equal(model[0].weight, before)
        return history

    a, b = run(), run()
    strip = lambda h: [(r.train_loss, r.val_loss, r.val_accuracy) for r in h.records]
    assert strip(a) == strip(b)


def test_stop_after_runs_the_first_epochs_of_the_same_schedule():
    def run(**kwargs):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        return train(model, _blobs(), _blobs(seed=1), epochs=4, lr=1e-2, seed=3, **kwargs), model

    (whole, _), (first, model) = run(), run(stop_after=1)
    strip = lambda records: [(r.train_loss, r.val_loss, r.val_accuracy) for r in records]
    assert len(first.records) == 1 and strip(first.records) == strip(whole.records[:1])
    with torch.no_grad():  # it stopped on epoch 1's weights: their validation loss is that epoch's
        assert F.cross_entropy(model(_blobs(seed=1)[0]), _blobs(seed=1)[1]).item() == pytest.approx(
            first.records[0].val_loss, rel=1e-6)
    with_patience, _ = run(stop_after=2, patience=1)  # as chapter 6 calls it
    assert strip(with_patience.records) == strip(whole.records[:len(with_patience.records)])
    assert 1 <= len(with_patience.records) <= 2
    for bad in (0, 5):
        with pytest.raises(ValueError, match="stop_after"):
            run(stop_after=bad)


def test_history_frame():
    h = History((EpochRecord(1, 1.0, 0.9, 0.5, 0.1), EpochRecord(2, 0.5, 0.4, 0.75, 0.1)))
    frame = h.to_frame(seconds=False)
    assert list(frame.columns) == ["train_loss", "val_loss", "val_accuracy"]
    assert list(frame.index) == [1, 2] and h.final.val_accuracy == 0.75
    assert "seconds" in h.to_frame().columns


@pytest.mark.parametrize("kwargs", [{"epochs": 0}, {"epochs": 1.5}, {"lr": 0.0}, {"batch_size": 0}])
def test_bad_input_is_a_value_error(kwargs):
    args = {"epochs": 1, "lr": 1e-3, **kwargs}
    with pytest.raises(ValueError):
        train(nn.Linear(4, 2), _blobs(), _blobs(), **args)


def test_nothing_to_train_and_mismatched_data_are_value_errors():
    with pytest.raises(ValueError, match="requires grad"):
        train(nn.Linear(4, 2).requires_grad_(False), _blobs(), _blobs(), epochs=1, lr=1e-3)
    x, y = _blobs()
    with pytest.raises(ValueError, match="equal length"):
        evaluate(nn.Linear(4, 2), (x, y[:-1]))


def test_linear_schedule_matches_a_hand_written_adamw_loop():
    x, y = _blobs(n=20)
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    reference = nn.Linear(4, 2)
    reference.load_state_dict(model.state_dict())
    # One full batch per epoch, 3 steps: the rates are lr * (1 - k/3) for k = 0, 1, 2.
    train(model, (x, y), (x, y), epochs=3, lr=0.1, batch_size=20, schedule="linear")
    optimizer = torch.optim.AdamW(reference.parameters(), lr=0.1, weight_decay=0.0)
    for k in range(3):
        optimizer.param_groups[0]["lr"] = 0.1 * (1 - k / 3)
        optimizer.zero_grad()
        F.cross_entropy(reference(x), y).backward()
        optimizer.step()
    for p, q in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(p, q)
    with pytest.raises(ValueError, match="schedule"):
        train(model, (x, y), (x, y), epochs=1, lr=0.1, schedule="cosine")


def test_latest_line_keeps_what_a_terminal_shows_last():
    from lorakit.training import latest_line

    assert latest_line("\r 10%|#   | 1/10\r 20%|##  | 2/10 ") == "20%|##  | 2/10"
    assert latest_line("plain") == "plain" and latest_line("\n") == ""


def test_progress_yields_every_item_with_its_label():
    from lorakit.training import progress

    bar = progress(range(5), desc="runs")  # outside a Jupyter kernel: a text bar on stderr
    assert list(bar) == [0, 1, 2, 3, 4] and bar.total == 5


def test_plot_histories_draws_one_line_per_run():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lorakit.plots import plot_histories

    h = History((EpochRecord(1, 1.0, 0.9, 0.5, 0.1), EpochRecord(2, 0.5, 0.4, 0.75, 0.1)))
    fig, ax = plt.subplots()
    assert plot_histories(ax, {"a": h, "b": h}, "val_accuracy") is ax
    assert [list(line.get_ydata()) for line in ax.lines] == [[0.5, 0.75], [0.5, 0.75]]
    plt.close(fig)


def test_mean_history_averages_each_field_per_epoch():
    a = History((EpochRecord(1, 1.0, 0.8, 0.5, 0.1), EpochRecord(2, 0.6, 0.4, 0.7, 0.3)))
    b = History((EpochRecord(1, 0.0, 0.4, 0.9, 0.3), EpochRecord(2, 0.2, 0.2, 0.9, 0.1)))
    mean = mean_history([a, b])
    assert [r.epoch for r in mean.records] == [1, 2]
    assert mean.records[0] == EpochRecord(1, 0.5, pytest.approx(0.6), pytest.approx(0.7), pytest.approx(0.2))
    assert mean.final.val_accuracy == pytest.approx(0.8)
    with pytest.raises(ValueError):
        mean_history([])
    with pytest.raises(ValueError, match="same epochs"):
        mean_history([a, History(a.records[:1])])
