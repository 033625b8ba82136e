"""Typed relation paths: what the graph returns for (user, candidates), for every backend alike."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from services.core.errors import RequestError


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class PathConfig(_Frozen):
    """How much of the graph a request looks at."""

    history_length: int = Field(default=20, ge=1, le=200, description="last N history items")
    # 2 reaches shared attributes and direct item links; 3 adds attribute -> item -> link detours.
    # Beyond 3 the number of paths explodes through hub attributes (a genre joins most items).
    max_hops: int = Field(default=2, ge=1, le=3, description="path length bound in hops")
    max_hub_degree: int = Field(
        default=1000,
        ge=1,
        description="a path never passes through an attribute node with more path relationships than this (a hub "
        "such as a genre of 50,000 movies: paths through it say little and their number explodes); a hub can still "
        "be where a history item and a candidate meet",
    )
    max_paths_per_pair: int = Field(default=10, ge=1, le=100, description="kept per (history, candidate) pair")
    # Serving with fusion scores the candidates with the retriever, which reads far more of the history
    # than the prompt shows; the same round trip returns those item ids (paths still start from the last
    # `history_length` only).
    sequence_length: int = Field(default=0, ge=0, le=1000, description="also return the last N item ids")

    @property
    def left_hops(self) -> int:
        """Hops expanded from the history side; the other side expands `right_hops` and they meet."""
        return (self.max_hops + 1) // 2

    @property
    def right_hops(self) -> int:
        return self.max_hops // 2


class HistoryCutoff(_Frozen):
    """Only history strictly before position (timestamp, item_idx) in the (timestamp, item) order.

    item_idx = 0 (the padding id) keeps exactly the events with a smaller timestamp.
    """

    timestamp: int
    item_idx: int = Field(default=0, ge=0)


class HistoryItem(_Frozen):
    item_id: str
    title: str
    rating: float | None
    timestamp: int


class PathRequest(_Frozen):
    """Paths from a user's history to candidates. The history is the graph's own (the user's RATED
    items, before `cutoff` if given), or `history` when the caller knows it (evaluation and training:
    exactly the model's input, whatever interactions the graph holds)."""

    user_id: str = Field(min_length=1)
    candidates: tuple[str, ...] = Field(min_length=1)
    cutoff: HistoryCutoff | None = None
    history: tuple[HistoryItem, ...] | None = None

    @model_validator(mode="after")
    def _one_history_source(self) -> PathRequest:
        if self.history is not None and self.cutoff is not None:
            raise ValueError("give either a cutoff into the graph's history or the history itself, not both")
        return self

    @field_validator("candidates")
    @classmethod
    def _unique(cls, candidates: tuple[str, ...]) -> tuple[str, ...]:
        duplicates = sorted({c for c in candidates if candidates.count(c) > 1})
        if duplicates:
            raise ValueError(f"duplicate candidate ids: {duplicates}")
        return candidates


# Paths are plain frozen dataclasses, not pydantic models: a request carries hundreds of them and
# building validated models was most of its cost. They come only from kgrank's own graph queries.
@dataclass(frozen=True, slots=True)
class PathNode:
    label: str
    key: str
    title: str | None = None

    @property
    def display(self) -> str:
        return self.title or self.key


@dataclass(frozen=True, slots=True)
class Hop:
    """One relationship of a path; `forward` when it points from the node before it to the node after."""

    type: str
    forward: bool


@dataclass(frozen=True, slots=True)
class RelationPath:
    """nodes[0] is a history item, nodes[-1] a candidate; hops[i] joins nodes[i] and nodes[i + 1]."""

    nodes: tuple[PathNode, ...]
    hops: tuple[Hop, ...]

    @property
    def history_item(self) -> str:
        return self.nodes[0].key

    @property
    def candidate(self) -> str:
        return self.nodes[-1].key

    @property
    def length(self) -> int:
        return len(self.hops)


class CandidateItem(_Frozen):
    item_id: str
    title: str


class UserPaths(_Frozen):
    """A user's recent history (oldest first), the candidates in request order, and the paths between them.

    `paths` are ordered by candidate position, then history position, then the canonical path order.
    """

    user_id: str
    known_user: bool
    history: tuple[HistoryItem, ...]
    candidates: tuple[CandidateItem, ...]
    paths: tuple[RelationPath, ...]
    # The ids of the user's last `PathConfig.sequence_length` stored items, oldest first (the retriever's
    # input); empty unless asked for, and when the caller gave the history itself.
    sequence: tuple[str, ...] = ()

    def paths_to(self, candidate: str) -> tuple[RelationPath, ...]:
        return tuple(path for path in self.paths if path.candidate == candidate)


class PathSource(Protocol):
    """Relation paths for a batch of requests in one graph round trip (Neo4j or embedded)."""

    config: PathConfig

    def fetch(self, requests: Sequence[PathRequest]) -> list[UserPaths]: ...


def check_request_batch(requests: Sequence[PathRequest]) -> None:
    if not requests:
        raise RequestError("a path fetch needs at least one request")


def given_history(request: PathRequest, config: PathConfig) -> list[HistoryItem] | None:
    """The caller's history, cut to the configured length (None when the graph's history is wanted)."""
    return None if request.history is None else list(request.history[-config.history_length :])
