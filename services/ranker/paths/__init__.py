"""Relation paths between a user's history and candidate items, from Neo4j or the embedded graph."""

from services.ranker.paths.models import (
    CandidateItem,
    HistoryCutoff,
    HistoryItem,
    Hop,
    PathConfig,
    PathNode,
    PathRequest,
    PathSource,
    RelationPath,
    UserPaths,
)

__all__ = [
    "CandidateItem",
    "HistoryCutoff",
    "HistoryItem",
    "Hop",
    "PathConfig",
    "PathNode",
    "PathRequest",
    "PathSource",
    "RelationPath",
    "UserPaths",
]
