"""Real human-labelled text, offline: movie-review snippets rated by people (Hutto & Gilbert 2014).

The file `files/movieReviewSnippets_GroundTruth.txt.gz` is the ground-truth file of the VADER
paper's data set, byte for byte (gzipped): 10,605 sentence snippets from Rotten Tomatoes reviews
(the sentence polarity data of Pang & Lee 2005), each with the mean of ten people's valence
ratings on a scale of -4 to +4. Where it comes from:

- the sdist of vaderSentiment 3.3.2 on PyPI (MIT licence, `files/vaderSentiment-LICENSE.txt`),
  sha256 5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9;
- in it, `additional_resources/hutto_ICWSM_2014.tar.gz`
  (sha256 d5bb07d87474b3eb8d30b4deccbc23f19d742a6c5718fbacc65485b70b95c5fa);
- in that, `hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt`: tab-separated id, mean
  valence, text; UTF-8 with CRLF line ends; sha256 of the uncompressed file is SHA256 below.

The task: is a snippet positive? Snippets the raters found near-neutral (|valence| < 0.5) are
left out; label 1 if the mean valence is positive, else 0. The splits are fixed by the snippet's
id and never change: id % 10 == 0 is test, id % 10 == 1 is validation, the rest is training.
The file lists the positive snippets first, so within a split the order is shuffled, by a fixed
key (the sha256 of the id), so that `head(n)` is a fair sample on every machine and version.
"""
from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from importlib import resources

import torch

FILE = "movieReviewSnippets_GroundTruth.txt.gz"
SHA256 = "c8293b0d942e90e223ea2c0955d969040d1a1be514a978b9af0698940bd13350"  # the uncompressed file
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Snippet:
    """One rated snippet: its id in the file, mean valence of 10 ratings (-4..4), and text."""

    id: int
    valence: float
    text: str


@dataclass(frozen=True)
class TextSplit:
    """Texts with their labels (1 = positive) and the raters' mean valence, in a fixed shuffled order."""

    ids: tuple[int, ...]
    texts: tuple[str, ...]
    labels: torch.Tensor  # (n,) int64
    valence: torch.Tensor  # (n,) float32

    def __len__(self) -> int:
        return len(self.texts)

    def head(self, n: int) -> "TextSplit":
        """The first n examples (a smaller split for the ci scale)."""
        return TextSplit(self.ids[:n], self.texts[:n], self.labels[:n], self.valence[:n])

    def __repr__(self) -> str:
        pos = int(self.labels.sum())
        return f"TextSplit({len(self)} snippets: {pos} positive, {len(self) - pos} negative)"


@dataclass(frozen=True)
class SentimentTask:
    """Fixed train / validation / test splits of the movie-review snippets."""

    train: TextSplit
    val: TextSplit
    test: TextSplit
    min_abs_valence: float
    sha256: str

    def __repr__(self) -> str:
        return (f"SentimentTask(train={len(self.train)}, val={len(self.val)}, test={len(self.test)}, "
                f"|valence| >= {self.min_abs_valence}, sha256={self.sha256[:12]}...)")


def read_snippets() -> tuple[Snippet, ...]:
    """Every snippet of the shipped file, after checking its sha256 against the recorded one."""
    raw = gzip.decompress(resources.files("lorakit").joinpath("files", FILE).read_bytes())
    digest = hashlib.sha256(raw).hexdigest()
    if digest != SHA256:
        raise ValueError(f"{FILE} has sha256 {digest}, expected {SHA256}: the data file changed")
    rows = [line.split("\t") for line in raw.decode("utf-8").splitlines() if line.strip()]
    return tuple(Snippet(int(i), float(v), text.strip()) for i, v, text in rows)


def split_of(snippet_id: int) -> str:
    """'test', 'val' or 'train', from the id alone (id % 10: 0 test, 1 val, else train)."""
    return {0: "test", 1: "val"}.get(snippet_id % 10, "train")


def _shuffle_key(snippet_id: int) -> str:
    return hashlib.sha256(str(snippet_id).encode()).hexdigest()


def movie_reviews(min_abs_valence: float = 0.5) -> SentimentTask:
    """The sentiment task: snippets with |mean valence| >= min_abs_valence, label = valence > 0."""
    if not 0 <= min_abs_valence < 4:
        raise ValueError(f"min_abs_valence must be in [0, 4), got {min_abs_valence!r}")
    kept = [s for s in read_snippets() if abs(s.valence) >= min_abs_valence and s.valence != 0]
    parts = {}
    for name in SPLITS:
        rows = sorted((s for s in kept if split_of(s.id) == name), key=lambda s: _shuffle_key(s.id))
        parts[name] = TextSplit(
            ids=tuple(s.id for s in rows),
            texts=tuple(s.text for s in rows),
            labels=torch.tensor([int(s.valence > 0) for s in rows], dtype=torch.long),
            valence=torch.tensor([s.valence for s in rows], dtype=torch.float32),
        )
    return SentimentTask(**parts, min_abs_valence=min_abs_valence, sha256=SHA256)
