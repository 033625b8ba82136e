"""Retrieved candidates: top-K item ids and scores per user, never full score vectors.

One `.npz` file per split holds `users` (U,), `items` (U, K) in retriever order, `scores` (U, K) and
a JSON header naming the dataset version it was computed on, so it cannot be evaluated on another.
Item 0 with score -inf pads a list when fewer than K items were left to recommend.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from services.core.errors import DatasetError, DatasetFormatError, DatasetNotFoundError


class CandidateHeader(BaseModel):
    dataset: str
    data_hash: str
    split: str
    retriever: str
    seed: int
    top_k: int


@dataclass(frozen=True)
class CandidateSet:
    header: CandidateHeader
    users: np.ndarray
    items: np.ndarray
    scores: np.ndarray

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial.npz")
        np.savez_compressed(
            partial,
            header=np.array(self.header.model_dump_json()),
            users=self.users.astype(np.int32),
            items=self.items.astype(np.int32),
            scores=self.scores.astype(np.float32),
        )
        partial.replace(path)

    @classmethod
    def load(cls, path: Path) -> CandidateSet:
        if not path.is_file():
            raise DatasetNotFoundError(f"{path}: candidates file not found (run `kgrank train retriever`)")
        try:
            with np.load(path, allow_pickle=False) as archive:
                header = CandidateHeader.model_validate(json.loads(str(archive["header"])))
                users, items, scores = archive["users"], archive["items"], archive["scores"]
        except (OSError, ValueError, KeyError) as e:
            raise DatasetFormatError(f"{path}: not a kgrank candidates file: {e}", path=str(path)) from e
        if items.shape != scores.shape or items.shape != (len(users), header.top_k):
            raise DatasetFormatError(f"{path}: inconsistent shapes {users.shape} {items.shape} {scores.shape}")
        return cls(header=header, users=users, items=items, scores=scores)

    def valid(self, row: int, limit: int) -> np.ndarray:
        """The first `limit` real candidates of a row (padding dropped)."""
        items = self.items[row]
        return items[items > 0][:limit].astype(np.int64)

    def valid_scores(self, row: int, limit: int) -> np.ndarray:
        """The retriever's scores of `valid(row, limit)`, in the same order."""
        return self.scores[row][self.items[row] > 0][:limit].astype(np.float64)

    def check_matches(self, *, dataset: str, data_hash: str, users: int, items: int) -> None:
        """Refuse candidates computed on another dataset or another version of its id maps."""
        if self.header.dataset != dataset or self.header.data_hash != data_hash:
            raise DatasetError(
                f"candidates were computed on {self.header.dataset} ({self.header.data_hash[:12]}), "
                f"not on {dataset} ({data_hash[:12]}): retrain the retriever on this dataset",
                candidates=self.header.dataset,
            )
        if self.users.min(initial=1) < 1 or self.users.max(initial=1) > users:
            raise DatasetError(f"candidate users fall outside 1..{users}")
        padding = self.items == 0
        if (
            self.items.min(initial=0) < 0
            or self.items.max(initial=0) > items
            or np.isfinite(self.scores[padding]).any()
        ):
            raise DatasetError(f"candidate items fall outside 1..{items}")
