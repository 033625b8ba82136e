"""The preference module as a ranker on its own: candidates by pooled path score (cheap, CPU only)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from services.ranker.context import TaskContext
from services.ranker.preference.scorer import PreferenceScorer
from services.ranker.ranking import RankingTask


class PreferenceRanker:
    name = "preference module"

    def __init__(self, context: TaskContext, scorer: PreferenceScorer) -> None:
        self._context = context
        self._scorer = scorer

    def rank(self, tasks: Sequence[RankingTask]) -> list[np.ndarray]:
        paths = self._context.fetch(tasks)
        scores = self._scorer.candidate_scores([(task.user, p) for task, p in zip(tasks, paths, strict=True)])
        # A stable sort keeps the retriever's order among equal scores.
        return [task.candidates[np.argsort(-s, kind="stable")] for task, s in zip(tasks, scores, strict=True)]
