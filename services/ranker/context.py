"""What a ranker knows about a task beyond ids: titles, the history it shows, and relation paths.

A task's history is taken from the processed dataset: exactly the model's input, so the graph may
hold train interactions only (evaluation without leakage) or all of them (serving) and show the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from services.graph_loader.dataset import ProcessedDataset
from services.ranker.paths.models import CandidateItem, HistoryItem, PathConfig, PathRequest, PathSource, UserPaths
from services.ranker.ranking import RankingTask

# Paths for ranking: up to 3 per (history item, candidate) pair. Prompts show one line per history item
# and the preference module pools them, so more would only cost time.
RANKING_PATHS = PathConfig(max_paths_per_pair=3)


class TaskContext(Protocol):
    def fetch(self, tasks: Sequence[RankingTask]) -> list[UserPaths]:
        """For each task: its history (oldest first), its candidates in task order, and their paths."""
        ...


class DatasetItems:
    """Titles, ratings and timestamps of a processed dataset, by dense id."""

    def __init__(self, dataset: ProcessedDataset) -> None:
        self.records = dataset.items
        frame = dataset.interactions
        self._events = {
            (int(u), int(i)): (None if r != r else float(r), int(t))  # NaN (no rating) is the only r != r
            for u, i, r, t in zip(frame["user"], frame["item"], frame["rating"], frame["timestamp"], strict=True)
        }

    def history(self, task: RankingTask, length: int) -> tuple[HistoryItem, ...]:
        items = []
        for item in task.history[-length:].tolist():
            rating, timestamp = self._events[(task.user, item)]
            record = self.records[item - 1]
            items.append(HistoryItem(item_id=record.id, title=record.title, rating=rating, timestamp=timestamp))
        return tuple(items)

    def candidates(self, task: RankingTask) -> tuple[CandidateItem, ...]:
        return tuple(
            CandidateItem(item_id=self.records[i - 1].id, title=self.records[i - 1].title)
            for i in task.candidates.tolist()
        )


class GraphContext:
    """Relation paths from the knowledge graph (one round trip for all tasks of a call)."""

    def __init__(self, dataset: ProcessedDataset, source: PathSource) -> None:
        self._items = DatasetItems(dataset)
        self._source = source

    def fetch(self, tasks: Sequence[RankingTask]) -> list[UserPaths]:
        length = self._source.config.history_length
        return self._source.fetch(
            [
                PathRequest(
                    user_id=task.user_id,
                    candidates=tuple(c.item_id for c in self._items.candidates(task)),
                    history=self._items.history(task, length),
                )
                for task in tasks
            ]
        )


class DatasetContext:
    """History and titles without relation paths (no graph needed)."""

    def __init__(self, dataset: ProcessedDataset, *, history_length: int) -> None:
        self._items = DatasetItems(dataset)
        self._history_length = history_length

    def fetch(self, tasks: Sequence[RankingTask]) -> list[UserPaths]:
        return [
            UserPaths(
                user_id=task.user_id,
                known_user=True,
                history=self._items.history(task, self._history_length),
                candidates=self._items.candidates(task),
                paths=(),
            )
            for task in tasks
        ]
