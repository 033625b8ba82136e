"""What every retriever offers: scores over all items for the next position of a sequence."""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn


class NextItemScorer(Protocol):
    def score_next(self, sequences: torch.Tensor) -> torch.Tensor:
        """(B, L) left-padded item ids → (B, N + 1) scores for the next item (index 0 = padding: -inf)."""
        ...


class SequenceModel(nn.Module):
    """A neural retriever: states per position, scored against tied item embeddings plus a bias."""

    embedding: nn.Embedding
    bias: nn.Parameter

    def init_weights(self) -> None:
        """Small initial weights (std 0.02): with N(0, 1) embeddings the first logits are ±10 and the
        loss starts far above log(items)."""
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.trunc_normal_(module.weight, std=0.02, a=-0.04, b=0.04)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)

    def scores(self, states: torch.Tensor) -> torch.Tensor:
        """(..., D) → (..., N + 1); the padding id can never win."""
        logits = states @ self.embedding.weight.T + self.bias
        logits[..., 0] = float("-inf")
        return logits

    def score_next(self, sequences: torch.Tensor) -> torch.Tensor:
        return self.scores(self(sequences)[:, -1])


class Popularity(nn.Module):
    """Scores every item by its number of training interactions, whoever asks."""

    def __init__(self, counts: torch.Tensor) -> None:
        super().__init__()
        scores = counts.to(torch.float32).clone()
        scores[0] = float("-inf")
        self.register_buffer("counts", scores)

    def score_next(self, sequences: torch.Tensor) -> torch.Tensor:
        return self.counts.expand(sequences.size(0), -1).clone()
