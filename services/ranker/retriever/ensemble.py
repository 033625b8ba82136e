"""An ensemble of trained retrievers: the mean of their log-probabilities for the next item.

Each member's scores are turned into log-probabilities over all items (log-softmax) before averaging,
so members trained to different logit scales count alike (a geometric mean of their next-item
distributions). Each member reads the last `max_len` items it was trained with. An ensemble is saved
and loaded like any retriever run (`checkpoint.pt` with its members inside), so evaluation, ranker
training and serving use it wherever they take a retriever.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class Ensemble(nn.Module):
    def __init__(self, members: Sequence[nn.Module], max_lens: Sequence[int]) -> None:
        super().__init__()
        if not members or len(members) != len(max_lens):
            raise ValueError("an ensemble needs members, each with its max_len")
        self.members = nn.ModuleList(members)
        self.max_lens = list(max_lens)

    def score_next(self, sequences: torch.Tensor) -> torch.Tensor:
        """(B, L) left-padded item ids, L >= every member's max_len → (B, N + 1) mean log-probabilities."""
        total = None
        for member, max_len in zip(self.members, self.max_lens, strict=True):
            scores = torch.log_softmax(member.score_next(sequences[:, -max_len:]).float(), dim=-1)  # type: ignore[operator]
            total = scores if total is None else total + scores
        assert total is not None
        return total / len(self.members)
