"""A small train/evaluate loop for classifiers: AdamW, cross-entropy, one record per epoch."""
from __future__ import annotations

import math
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from ._args import check_int, model_device
from .runtime import SMOKE_STEPS, smoke


@dataclass(frozen=True)
class Evaluation:
    """Mean cross-entropy and accuracy of a model on one split."""

    loss: float
    correct: int
    n: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.n

    def __repr__(self) -> str:
        return f"Evaluation(loss={self.loss:.4f}, accuracy={self.accuracy:.4f} ({self.correct}/{self.n}))"


@dataclass(frozen=True)
class EpochRecord:
    """One epoch: mean training loss over its batches, validation loss and accuracy, wall seconds."""

    epoch: int
    train_loss: float
    val_loss: float
    val_accuracy: float
    seconds: float  # wall time of the epoch's training steps (perf_counter; CUDA synchronised)
    test_loss: float = math.nan  # on test_data, when train was given one
    test_accuracy: float = math.nan


@dataclass(frozen=True)
class History:
    """The records of one training run, first epoch first."""

    records: tuple[EpochRecord, ...]

    @property
    def final(self) -> EpochRecord:
        return self.records[-1]

    @property
    def best(self) -> EpochRecord:
        """The first epoch with the highest validation accuracy (the one early stopping keeps)."""
        return max(self.records, key=lambda r: (r.val_accuracy, -r.epoch))

    def to_frame(self, seconds: bool = True):
        """A pandas DataFrame indexed by epoch (drop the varying `seconds` column with seconds=False)."""
        import pandas as pd

        frame = pd.DataFrame([asdict(r) for r in self.records]).set_index("epoch")
        untested = [c for c in ("test_loss", "test_accuracy") if frame[c].isna().all()]
        frame = frame.drop(columns=untested)  # a run without test_data has no test columns
        return frame if seconds else frame.drop(columns="seconds")

    def __repr__(self) -> str:
        return repr(self.to_frame())


def mean_history(histories: Sequence[History]) -> History:
    """Field by field mean of several runs over the same epochs (e.g. one run per seed)."""
    if not histories:
        raise ValueError("histories is empty: give at least one History")
    epochs = [r.epoch for r in histories[0].records]
    if any([r.epoch for r in h.records] != epochs for h in histories):
        raise ValueError("every history must have the same epochs to be averaged")
    names = [f.name for f in fields(EpochRecord) if f.name != "epoch"]
    def mean(values) -> float:
        value = statistics.fmean(values)
        return math.nan if math.isnan(value) else value  # the one NaN object: records stay comparable

    records = tuple(
        EpochRecord(epoch, **{n: mean(getattr(h.records[i], n) for h in histories) for n in names})
        for i, epoch in enumerate(epochs)
    )
    return History(records)


class _DisplayLine:
    """A file for tqdm inside a Jupyter kernel: one display, updated in place with the latest bar.

    Written to stderr, every refresh of a bar would be stored as one more output in an executed
    notebook; a display updated by its id is stored once, in its final state.
    """

    encoding = "utf-8"  # tells tqdm it may draw its bar with Unicode blocks

    def __init__(self):
        from IPython.display import display

        self._handle = display({"text/plain": ""}, raw=True, display_id=True)

    def write(self, s: str) -> None:
        line = latest_line(s)
        if line:
            self._handle.update({"text/plain": line}, raw=True)

    def flush(self) -> None:
        pass


def latest_line(s: str) -> str:
    """What a terminal would show last of a write that redraws with carriage returns."""
    return s.rsplit("\r", 1)[-1].strip()


def _progress_file():
    # In a Jupyter kernel (a shell with a .kernel, Colab's included) a display; elsewhere stderr.
    try:
        from IPython import get_ipython
    except ImportError:
        return sys.stderr
    shell = get_ipython()
    return _DisplayLine() if shell is not None and hasattr(shell, "kernel") else sys.stderr


def progress(iterable, desc: str = ""):
    """A text tqdm bar over `iterable` (a list of runs, say): in a Jupyter kernel one display
    updated in place, so a stored notebook keeps only the final bar and no widget state."""
    from tqdm.std import tqdm

    return tqdm(iterable, desc=desc, file=_progress_file(), ncols=80, mininterval=0.5)


def logits_of(output) -> torch.Tensor:
    """The logits of a model's output: a tensor as is, or a transformers output's `.logits`."""
    if isinstance(output, torch.Tensor):
        return output
    if hasattr(output, "logits"):
        return output.logits
    raise ValueError(f"cannot find logits in a model output of type {type(output).__name__}")


def _xy(data) -> tuple[torch.Tensor, torch.Tensor]:
    # A lorakit.data.Split (anything with .x and .y) or an (x, y) pair; x: (n, ...), y: (n,) int64.
    x, y = (data.x, data.y) if hasattr(data, "x") and hasattr(data, "y") else data
    if len(x) != len(y) or len(y) == 0:
        raise ValueError(f"x and y must be non-empty and of equal length, got {len(x)} and {len(y)}")
    return x, y


def _mask(data) -> torch.Tensor | None:
    # Tokenized text (lorakit.text.Encoded) carries an attention mask (n, L): the model gets (x, mask).
    return getattr(data, "mask", None)


def _call(model: nn.Module, x: torch.Tensor, mask: torch.Tensor | None, idx, device) -> torch.Tensor:
    """Logits of one batch: model(x[idx]), or model(x[idx], mask[idx]) for tokenized text."""
    if mask is None:
        return logits_of(model(x[idx].to(device)))
    return logits_of(model(x[idx].to(device), mask[idx].to(device)))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # CUDA runs asynchronously: wait before reading a clock


@torch.no_grad()
def evaluate(model: nn.Module, data, batch_size: int = 256) -> Evaluation:
    """Mean cross-entropy (over examples) and correct predictions, in eval mode (no dropout)."""
    x, y = _xy(data)
    mask = _mask(data)
    device, was_training = model_device(model), model.training
    model.eval()
    loss_sum, correct = 0.0, 0
    for i in range(0, len(y), batch_size):
        batch = slice(i, i + batch_size)
        logits = _call(model, x, mask, batch, device)  # (b, num_labels)
        yb = y[batch].to(device)
        loss_sum += F.cross_entropy(logits, yb, reduction="sum").item()
        correct += int((logits.argmax(-1) == yb).sum())
    model.train(was_training)
    return Evaluation(loss=loss_sum / len(y), correct=correct, n=len(y))


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 256,
            mask: torch.Tensor | None = None) -> torch.Tensor:
    """Logits (n, num_labels) in eval mode, on the CPU (mask: the attention mask of tokenized text)."""
    device, was_training = model_device(model), model.training
    model.eval()
    out = torch.cat([_call(model, x, mask, slice(i, i + batch_size), device).cpu()
                     for i in range(0, len(x), batch_size)])
    model.train(was_training)
    return out


def train(
    model: nn.Module,
    train_data,
    val_data,
    epochs: int,
    lr: float,
    batch_size: int = 32,
    weight_decay: float = 0.0,
    schedule: str = "linear",
    seed: int = 0,
    progress: bool = False,
    desc: str | None = None,
    patience: int | None = None,
    test_data=None,
    param_groups: list[dict] | None = None,
    stop_after: int | None = None,
) -> History:
    """Train the parameters that require grad with AdamW on cross-entropy; evaluate after each epoch.

    schedule "linear" decays the learning rate from lr to 0 over the run, step by step (the
    default of transformers' Trainer); "constant" keeps it at lr. The batch order comes from a
    generator seeded with `seed`. With progress=True a tqdm bar counts the steps (on stderr, or in
    a Jupyter kernel in one display updated in place). param_groups, if given, are AdamW's groups
    (each may set its own "lr", e.g. LoRA+'s; the schedule scales every group alike).

    Early stopping (patience=k): stop once validation accuracy has not risen above its best for k
    epochs, and put back the weights of the best epoch (`History.best`); the schedule still spans
    `epochs`. With test_data, each record also holds that split's loss and accuracy. stop_after=k runs only
    the first k epochs of that schedule (to compare early epochs without paying for the rest); with
    patience it may stop sooner, and puts back the best of the epochs it ran.
    """
    check_int("epochs", epochs)
    if patience is not None:
        check_int("patience", patience)
    check_int("batch_size", batch_size)
    if stop_after is not None and check_int("stop_after", stop_after) > epochs:
        raise ValueError(f"stop_after ({stop_after}) must be at most epochs ({epochs})")
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr!r}")
    if schedule not in ("linear", "constant"):
        raise ValueError(f"schedule must be 'linear' or 'constant', got {schedule!r}")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no parameter that requires grad: nothing to train")
    x, y = _xy(train_data)
    mask = _mask(train_data)
    device = model_device(model)
    optimizer = torch.optim.AdamW(params if param_groups is None else param_groups, lr=lr,
                                  weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(seed)
    steps_per_epoch = math.ceil(len(y) / batch_size)
    total_steps = epochs * steps_per_epoch
    # Step k (0-based) runs at lr * (1 - k / total_steps): the last step still moves a little.
    decay = (lambda k: 1.0 - k / total_steps) if schedule == "linear" else (lambda k: 1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, decay)

    from tqdm.std import tqdm  # a text bar: no widget state in a stored notebook

    records, best_acc, best_state, waited = [], -1.0, None, 0
    file = _progress_file() if progress else sys.stderr
    with tqdm(total=total_steps, desc=desc, disable=not progress, unit="step", mininterval=0.5,
              file=file, ncols=80) as bar:
        for epoch in range(1, (stop_after or epochs) + 1):
            model.train()
            order = torch.randperm(len(y), generator=generator)
            loss_sum, seen = 0.0, 0
            _sync(device)
            start = time.perf_counter()
            for i in range(0, len(y), batch_size):
                if smoke() and i >= SMOKE_STEPS * batch_size:
                    break  # the full-scale CPU test: a few steps an epoch prove the path
                idx = order[i:i + batch_size]
                loss = F.cross_entropy(_call(model, x, mask, idx, device), y[idx].to(device))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                loss_sum += loss.item() * len(idx)
                seen += len(idx)
                bar.update(1)
            _sync(device)
            seconds = time.perf_counter() - start
            val = evaluate(model, val_data)
            bar.set_postfix(val_acc=f"{val.accuracy:.3f}")
            test = evaluate(model, test_data) if test_data is not None else None
            records.append(EpochRecord(epoch, loss_sum / seen, val.loss, val.accuracy, seconds,
                                       *((test.loss, test.accuracy) if test else ())))
            if patience is None:
                continue
            if val.accuracy > best_acc:
                best_acc, waited = val.accuracy, 0
                # Only what training moves: a frozen (e.g. 4-bit) base has state that load_state_dict refuses
                best_state = [p.detach().clone() for p in params]
            else:
                waited += 1
                if waited >= patience:
                    break
    if best_state is not None:
        with torch.no_grad():
            for p, best in zip(params, best_state):
                p.copy_(best)
    return History(tuple(records))
