"""Labelled ranking examples: training prefixes with candidates, validation users with retrieved ones.

docs/method.md §5: a training example is a prefix of a user's train sequence, its next item, and 19
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

TrainCandidates = Literal["random", "hard", "retrieved"]
# (histories, k) -> the retriever's k best items for each history, best first: (len(histories), k)
Ranking = Callable[[list[np.ndarray], int], np.ndarray]
RETRIEVAL_BATCH = 128  # prefixes scored by the retriever in one forward pass


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
    kind: TrainCandidates = "random",
    retriever: Ranking | None = None,
    candidates: int = 20,
) -> list[Example]:
    """Up to `count` train prefixes (every train event but each user's first), drawn at random.

    - random: the next item and 19 random items the user never interacted with, shuffled (the paper);
    - hard: the next item and the retriever's 19 best other guesses, shuffled;
    - retrieved: the retriever's top 20 for the prefix in its own order, only for prefixes whose next
      item is among them: what evaluation hands a ranker (the retriever has seen these sequences in
      training, so it does better on them than on new ones).
    """
    if kind != "random" and retriever is None:
        raise ValueError(f"{kind} training candidates need a retriever")
    rng = np.random.default_rng(seed)
    prefixes = [(u, t) for u in range(1, sequences.users + 1) for t in range(1, len(sequences.train(u)))]
    items = len(dataset.items)
    # The retriever ranks a few more than needed, so that enough are left once seen items are dropped.
    depth = candidates + max((len(s) for s in sequences.items), default=0)
    order = rng.permutation(len(prefixes))
    examples: list[Example] = []
    for start in range(0, len(order), RETRIEVAL_BATCH):
        chunk = [prefixes[i] for i in order[start : start + RETRIEVAL_BATCH]]
        splits = [
            (user, sequences.train(user)[:position], int(sequences.train(user)[position])) for user, position in chunk
        ]
        ranked = None if kind == "random" else retriever([h for _, h, _ in splits], min(depth, items))  # type: ignore[misc]
        for row, (user, history, target) in enumerate(splits):
            if len(examples) == count:
                return examples
            if kind == "retrieved":
                shown = set(history.tolist())
                pool = np.array([int(i) for i in ranked[row] if int(i) not in shown][:candidates], dtype=np.int64)  # type: ignore[index]
                if target not in pool:
                    continue
            else:
                seen = set(sequences.items[user - 1].tolist())
                if kind == "hard":
                    negatives = [int(i) for i in ranked[row] if int(i) not in seen]  # type: ignore[index]
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
                    task=RankingTask(user=user, user_id=dataset.user_id(user), history=history, candidates=pool),
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
                        retriever_scores=candidate_set.valid_scores(row, candidates),
                    ),
                    target=target,
                )
            )
    return examples
