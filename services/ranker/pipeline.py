"""The ranking steps one request goes through, each a plain function so the caller can time and guard it.

    choose paths (preference module) → prompt within budget → one scorer pass → order + explanations

A trained checkpoint folder holds everything the steps need: the LLM, its tokenizer, its metadata
(letter ids, prompt format, path strategy) and, for preference strategies, the preference module,
which is also the fallback ranker when the LLM cannot answer.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from services.ranker.llm.metadata import METADATA_FILE, RankerMetadata
from services.ranker.llm.ranker import path_selector, prompt_builder
from services.ranker.llm.scorer import load_tokenizer
from services.ranker.paths.models import CandidateItem, RelationPath, UserPaths
from services.ranker.preference.scorer import PREFERENCE_FILE, PreferenceScorer
from services.ranker.preference.select import NoPaths, PathSelector, ShortestPaths
from services.ranker.prompt import Prompt, PromptBuilder, ScoredPath


@dataclass(frozen=True)
class Explanation:
    path: RelationPath
    score: float  # the selector's score: why this path is listed before the next
    shown_to_model: bool  # whether the prompt the scores came from contained it


@dataclass(frozen=True)
class RankedCandidate:
    item: CandidateItem
    score: float
    rank: int  # 1 = best
    explanations: tuple[Explanation, ...]


class RankingSteps:
    """The per-request steps of one trained checkpoint (the LLM pass itself is the scorer's job)."""

    def __init__(
        self,
        metadata: RankerMetadata,
        *,
        selector: PathSelector,
        builder: PromptBuilder,
        preference: PreferenceScorer | None,
        version: str,
    ) -> None:
        self.metadata = metadata
        self.selector = selector
        self.builder = builder
        self.preference = preference
        self.version = version
        # A checkpoint that shows no relations still explains its ranking with the graph's shortest paths.
        self._explainer: PathSelector = ShortestPaths() if isinstance(selector, NoPaths) else selector

    @classmethod
    def load(cls, model_dir: Path) -> RankingSteps:
        metadata = RankerMetadata.load(model_dir)
        preference_file = model_dir / PREFERENCE_FILE
        return cls(
            metadata,
            selector=path_selector(metadata, model_dir),
            builder=prompt_builder(load_tokenizer(model_dir), metadata.prompt),
            preference=PreferenceScorer.load(preference_file) if preference_file.is_file() else None,
            version=checkpoint_version(model_dir),
        )

    def choose(self, user: int, paths: UserPaths) -> list[ScoredPath]:
        """Every path of the request with its selector score (the prompt keeps the best that fit)."""
        (scored,) = self._explainer.score([(user, paths)])
        return scored

    def prompt(self, paths: UserPaths, scored: Sequence[ScoredPath]) -> Prompt:
        shown = () if isinstance(self.selector, NoPaths) else scored
        return self.builder.build(paths.history, paths.candidates, shown)

    def fallback_scores(self, user: int, paths: UserPaths) -> np.ndarray | None:
        """The preference module's candidate scores, or None when this checkpoint has no module."""
        if self.preference is None:
            return None
        (scores,) = self.preference.candidate_scores([(user, paths)])
        return scores


def rank_candidates(
    paths: UserPaths,
    scores: np.ndarray,
    scored: Sequence[ScoredPath],
    *,
    shown: Sequence[RelationPath],
    explanations_per_item: int,
) -> list[RankedCandidate]:
    """Candidates best first (ties keep request order), each with its best-scored paths."""
    by_candidate: dict[str, list[ScoredPath]] = defaultdict(list)
    for item in sorted(scored, key=lambda p: -p.score):  # stable: canonical path order breaks ties
        by_candidate[item.path.candidate].append(item)
    shown_set = set(shown)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    return [
        RankedCandidate(
            item=paths.candidates[position],
            score=float(scores[position]),
            rank=rank,
            explanations=tuple(
                Explanation(p.path, p.score, p.path in shown_set)
                for p in by_candidate[paths.candidates[position].item_id][:explanations_per_item]
            ),
        )
        for rank, position in enumerate(order.tolist(), start=1)
    ]


def checkpoint_version(model_dir: Path) -> str:
    """A short digest of what identifies a trained checkpoint: its metadata and training record."""
    digest = hashlib.sha256()
    for name in (METADATA_FILE, "training.json", PREFERENCE_FILE):
        path = model_dir / name
        if path.is_file():
            digest.update(name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]
