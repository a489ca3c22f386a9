"""Text as tensors: a tokenized split (input ids, attention mask, labels) that `train` and `evaluate` take."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ._args import check_int


@dataclass(frozen=True)
class Encoded:
    """A tokenized split: x (n, L) input ids, mask (n, L) attention mask (1 = token, 0 = padding), y (n,)."""

    x: torch.Tensor
    mask: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)

    def head(self, n: int) -> "Encoded":
        """The first n examples."""
        return Encoded(self.x[:n], self.mask[:n], self.y[:n])

    def __repr__(self) -> str:
        n, length = self.x.shape
        return f"Encoded({n} examples x {length} tokens, {int(self.mask.sum()):,} real tokens)"


def encode(tokenizer, split, max_length: int) -> Encoded:
    """Tokenize a split (anything with .texts and .labels): [CLS] text [SEP], truncated to max_length
    tokens and padded to the longest kept sequence."""
    check_int("max_length", max_length, minimum=2)
    batch = tokenizer(list(split.texts), padding="longest", truncation=True, max_length=max_length,
                      return_tensors="pt")
    return Encoded(batch["input_ids"], batch["attention_mask"], torch.as_tensor(split.labels).long())
