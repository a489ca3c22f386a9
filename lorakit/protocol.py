"""The fine-tuning protocol on the movie-review task: sizes, grid, epochs and seeds per scale."""
from __future__ import annotations

from dataclasses import dataclass

from .runtime import scale as current_scale


@dataclass(frozen=True)
class Protocol:
    """One scale's settings for comparing fine-tuning methods on `lorakit.movie_reviews()`.

    Every method gets the same data (the first `train` / `val` / `test` snippets of the fixed
    splits, tokenized to at most `max_length` tokens), the same batch size, the same learning-rate
    grid (each method keeps its best value on validation), at most `max_epochs` epochs with early
    stopping after `patience` epochs without a higher validation accuracy, and the same seeds.
    """

    train: int
    val: int
    test: int
    max_length: int
    batch_size: int
    max_epochs: int
    patience: int
    lrs: tuple[float, ...]
    seeds: tuple[int, ...]
    ranks: tuple[int, ...]  # the rank sweep
    rank_epochs: int  # epochs per point of the rank sweep
    threads: int  # torch threads for training on a CPU (ci: one, as `pytest -n 2` runs two notebooks on two cores)


PROTOCOLS = {
    "ci": Protocol(train=320, val=160, test=320, max_length=32, batch_size=16, max_epochs=3, patience=1,
                   lrs=(1e-4, 3e-3), seeds=(0, 1, 2), ranks=(1, 8), rank_epochs=1, threads=1),
    "full": Protocol(train=8087, val=978, test=1007, max_length=64, batch_size=32, max_epochs=6, patience=2,
                     lrs=(3e-5, 1e-4, 3e-4, 1e-3, 3e-3), seeds=(0, 1, 2, 3, 4), ranks=(1, 2, 4, 8, 16, 64),
                     rank_epochs=3, threads=1),
}


def protocol(scale: str | None = None) -> Protocol:
    """The protocol of a scale ('ci' or 'full'; default: `lorakit.scale()`)."""
    name = current_scale() if scale is None else scale
    if name not in PROTOCOLS:
        raise ValueError(f"scale must be one of {tuple(PROTOCOLS)}, got {name!r}")
    return PROTOCOLS[name]
