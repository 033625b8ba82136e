"""Per-user item sequences of a processed dataset, and what each evaluation split sees and predicts.

Leave-one-out: for `val` the input is the train part and the target the second-to-last item; for
`test` the input is train + val and the target the last item. Training uses the train part only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from services.graph_loader.dataset import ProcessedDataset

EvalSplit = Literal["val", "test"]


@dataclass(frozen=True)
class UserSequences:
    """items[u - 1] holds user u's items in (timestamp, item) order."""

    items: list[np.ndarray]

    @property
    def users(self) -> int:
        return len(self.items)

    def train(self, user: int) -> np.ndarray:
        return self.items[user - 1][:-2]

    def history(self, user: int, split: EvalSplit) -> np.ndarray:
        """The input a model sees when predicting `split`'s target."""
        return self.items[user - 1][: -2 if split == "val" else -1]

    def target(self, user: int, split: EvalSplit) -> int:
        return int(self.items[user - 1][-2 if split == "val" else -1])

    def targets(self, split: EvalSplit) -> np.ndarray:
        """Targets of users 1..U as one array (index u - 1)."""
        return np.array([self.target(u, split) for u in range(1, self.users + 1)], dtype=np.int64)


def user_sequences(dataset: ProcessedDataset) -> UserSequences:
    frame = dataset.interactions
    users = frame["user"].to_numpy()
    boundaries = np.flatnonzero(np.diff(users)) + 1
    items = np.split(frame["item"].to_numpy(np.int64, copy=True), boundaries)
    expected = np.arange(1, len(dataset.users) + 1)
    if not np.array_equal(users[np.r_[0, boundaries]], expected):
        raise ValueError("interactions must hold every user 1..U in order")
    return UserSequences(items=items)
