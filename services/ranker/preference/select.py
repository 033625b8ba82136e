"""Which relation paths a prompt shows first: the strategies the ablations compare.

`none` shows no relations (LlamaRec); `shortest` prefers short paths, as the paper's code does
without its module; `preference` uses the trained module; `untrained-preference` the module at its
random initialisation, which is what the paper's code actually ran.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from services.ranker.paths.models import UserPaths
from services.ranker.preference.scorer import PreferenceScorer
from services.ranker.prompt import ScoredPath


class PathSelector(Protocol):
    def score(self, examples: Sequence[tuple[int, UserPaths]]) -> list[list[ScoredPath]]: ...


class NoPaths:
    def score(self, examples: Sequence[tuple[int, UserPaths]]) -> list[list[ScoredPath]]:
        return [[] for _ in examples]


class ShortestPaths:
    """Shorter first; among equals the canonical path order (candidate, history item, relation types)."""

    def score(self, examples: Sequence[tuple[int, UserPaths]]) -> list[list[ScoredPath]]:
        return [[ScoredPath(path, -float(path.length)) for path in paths.paths] for _, paths in examples]


class PreferencePaths:
    def __init__(self, scorer: PreferenceScorer) -> None:
        self._scorer = scorer

    def score(self, examples: Sequence[tuple[int, UserPaths]]) -> list[list[ScoredPath]]:
        return self._scorer.score_paths(examples)
