"""The ranking interface: given a user's history and retrieved candidates, return them re-ordered.

Evaluation and serving call rankers the same way; the retriever's own order is the first ranker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class RankingTask:
    user: int  # dense user id
    user_id: str  # raw user id, as the graph knows it
    history: np.ndarray  # dense item ids, oldest first: what the ranker may look at
    candidates: np.ndarray  # dense item ids in retriever order
    retriever_scores: np.ndarray | None = None  # the retriever's score of each candidate (for fusion)


class Ranker(Protocol):
    name: str

    def rank(self, tasks: Sequence[RankingTask]) -> list[np.ndarray]:
        """For each task, its candidates in the ranker's order (best first): a permutation of them."""
        ...


class RetrieverOrder:
    """Keeps the retriever's order: the baseline every other ranker is compared against."""

    name = "retriever order"

    def rank(self, tasks: Sequence[RankingTask]) -> list[np.ndarray]:
        return [task.candidates for task in tasks]
