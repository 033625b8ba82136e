"""Turn backend rows into UserPaths with one canonical order and cap, shared by every backend."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from services.core.errors import UnknownItemsError
from services.graph_loader.schema import GraphSchema
from services.ranker.paths.models import (
    CandidateItem,
    HistoryItem,
    PathConfig,
    PathRequest,
    RelationPath,
    UserPaths,
)


def path_order_key(path: RelationPath, type_rank: Mapping[str, int]) -> tuple[object, ...]:
    """Shorter first, then relationship types in schema order, forward before backward, then node keys.

    This is a total order: two paths with equal keys have the same nodes, types and directions, and the
    graph holds at most one relationship per (start, type, end), so they are the same path.
    """
    return (
        path.length,
        tuple(type_rank[hop.type] for hop in path.hops),
        tuple(not hop.forward for hop in path.hops),
        tuple((node.label, node.key) for node in path.nodes),
    )


def assemble_user_paths(
    request: PathRequest,
    *,
    known_user: bool,
    history: list[HistoryItem],
    candidates: dict[str, CandidateItem],
    paths: Iterable[RelationPath],
    schema: GraphSchema,
    config: PathConfig,
    sequence: Iterable[str] = (),
) -> UserPaths:
    missing = [item_id for item_id in request.candidates if item_id not in candidates]
    if missing:
        raise UnknownItemsError(f"unknown item ids: {missing}", item_ids=missing, user_id=request.user_id)
    history_position = {item.item_id: position for position, item in enumerate(history)}
    candidate_position = {item_id: position for position, item_id in enumerate(request.candidates)}
    type_rank = {rel_type: rank for rank, rel_type in enumerate(schema.path_types)}
    ordered = sorted(
        paths,
        key=lambda p: (
            candidate_position[p.candidate],
            history_position[p.history_item],
            path_order_key(p, type_rank),
        ),
    )
    kept: list[RelationPath] = []
    per_pair: dict[tuple[str, str], int] = {}
    for path in ordered:
        pair = (path.history_item, path.candidate)
        per_pair[pair] = per_pair.get(pair, 0) + 1
        if per_pair[pair] <= config.max_paths_per_pair:
            kept.append(path)
    return UserPaths(
        user_id=request.user_id,
        known_user=known_user,
        history=tuple(history),
        candidates=tuple(candidates[item_id] for item_id in request.candidates),
        paths=tuple(kept),
        sequence=tuple(sequence),
    )
