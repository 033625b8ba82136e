"""Labelled ranking examples: training prefixes with negatives, validation users with retrieved candidates.

method.md §5: a training example is a prefix of a user's train sequence, its next item, and 19
negatives, shuffled. Validation examples are what evaluation sees: users whose val item is in their
retriever top 20, candidates in retriever order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from services.graph_loader.dataset import ProcessedDataset
from services.graph_loader.sequences import UserSequences
from services.ranker.candidates import CandidateSet
from services.ranker.ranking import RankingTask

Negatives = Literal["random", "retriever"]


@dataclass(frozen=True)
class Example:
    task: RankingTask
    target: int  # dense item id, one of task.candidates

    @property
    def target_position(self) -> int:
        return int(np.flatnonzero(self.task.candidates == self.target)[0])


def training_examples(
    dataset: ProcessedDataset,
    sequences: UserSequences,
    *,
    count: int,
    seed: int,
    candidates: int = 20,
    hard_negatives: Callable[[np.ndarray, int], np.ndarray] | None = None,
) -> list[Example]:
    """`count` prefixes drawn uniformly from all train prefixes (every train event but each user's first).

    Negatives are random items the user never interacted with, or — with `hard_negatives(history, k)`
    — the retriever's best guesses, since test candidates come from the retriever too.
    """
    rng = np.random.default_rng(seed)
    prefixes = [(u, t) for u in range(1, sequences.users + 1) for t in range(1, len(sequences.train(u)))]
    chosen = rng.choice(len(prefixes), size=min(count, len(prefixes)), replace=False)
    items = len(dataset.items)
    examples = []
    for index in sorted(chosen):
        user, position = prefixes[index]
        train = sequences.train(user)
        history, target = train[:position], int(train[position])
        seen = set(sequences.items[user - 1].tolist())
        if hard_negatives is not None:
            negatives = [int(i) for i in hard_negatives(history, candidates + len(seen)) if int(i) not in seen]
        else:
            negatives = []
            while len(negatives) < candidates - 1:
                pick = int(rng.integers(1, items + 1))
                if pick not in seen and pick not in negatives:
                    negatives.append(pick)
        pool = np.array([target, *negatives[: candidates - 1]], dtype=np.int64)
        rng.shuffle(pool)
        examples.append(
            Example(
                task=RankingTask(
                    user=user,
                    user_id=dataset.user_id(user),
                    history=history,
                    candidates=pool,
                ),
                target=target,
            )
        )
    return examples


def validation_examples(
    dataset: ProcessedDataset, sequences: UserSequences, candidate_set: CandidateSet, *, candidates: int = 20
) -> list[Example]:
    """Users whose val item is among their first `candidates` retrieved items, in retriever order."""
    examples = []
    for row, user in enumerate(candidate_set.users.tolist()):
        pool = candidate_set.valid(row, candidates)
        target = sequences.target(user, "val")
        if target in pool:
            examples.append(
                Example(
                    task=RankingTask(
                        user=user,
                        user_id=dataset.user_id(user),
                        history=sequences.history(user, "val"),
                        candidates=pool,
                    ),
                    target=target,
                )
            )
    return examples
