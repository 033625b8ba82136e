"""Which relation paths a prompt shows first: one selector per path strategy (services/ranker/strategy.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from services.core.errors import ConfigError
from services.ranker.paths.models import UserPaths
from services.ranker.preference.scorer import PreferenceScorer
from services.ranker.prompt import ScoredPath
from services.ranker.strategy import PathStrategy


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


def selector_for(strategy: PathStrategy, module: PreferenceScorer | None) -> PathSelector:
    """The one mapping from a path strategy to its selector: training, evaluation and serving use it."""
    if strategy == "none":
        return NoPaths()
    if strategy == "shortest":
        return ShortestPaths()
    if module is None:
        raise ConfigError(f"path strategy {strategy!r} needs a preference module (`kgrank train preference`)")
    trained = module.meta.get("trained") is True
    if trained != (strategy == "preference"):
        state = "trained" if trained else "untrained"
        raise ConfigError(f"path strategy {strategy!r} cannot use a {state} preference module")
    return PreferencePaths(module)
