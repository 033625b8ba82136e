"""Relation paths from the embedded graph: the same meet-in-the-middle search as `cypher/paths.cypher`.

History-side halves of up to ceil(max_hops/2) hops and candidate-side halves of up to floor(max_hops/2)
hops are joined on their meeting node; a path of length L is built once, from halves of ceil(L/2) and
floor(L/2) hops. Paths never repeat a node and never use RATED, so they never pass through a user.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from services.graph_loader.embedded import EmbeddedGraph, RelRow
from services.graph_loader.schema import ITEM_LABEL, USER_LABEL, GraphSchema
from services.ranker.paths.assemble import assemble_user_paths
from services.ranker.paths.models import (
    CandidateItem,
    HistoryItem,
    Hop,
    PathConfig,
    PathNode,
    PathRequest,
    RelationPath,
    UserPaths,
    check_request_batch,
    given_history,
)


@dataclass(frozen=True)
class _Half:
    """A node-simple walk from a start node; nodes[-1] is where it meets the other half."""

    nodes: tuple[int, ...]
    rels: tuple[RelRow, ...]


class EmbeddedPathSource:
    def __init__(
        self, graph: EmbeddedGraph, *, dataset: str, schema: GraphSchema, config: PathConfig | None = None
    ) -> None:
        self.config = config or PathConfig()
        self._graph = graph
        self._dataset = dataset
        self._schema = schema

    def fetch(self, requests: Sequence[PathRequest]) -> list[UserPaths]:
        check_request_batch(requests)
        return [self._fetch_one(request) for request in requests]

    def _fetch_one(self, request: PathRequest) -> UserPaths:
        graph = self._graph
        user = graph.find_nodes(self._dataset, USER_LABEL, [request.user_id]).get(request.user_id)
        given = given_history(request, self.config)
        sequence: list[str] = []
        if given is not None:
            history = given
            known = graph.find_nodes(self._dataset, ITEM_LABEL, [item.item_id for item in given])
            origins = [known[item.item_id].id for item in given if item.item_id in known]
        else:
            cutoff = request.cutoff
            ratings = (
                graph.ratings(
                    user.id,
                    before=(cutoff.timestamp, cutoff.item_idx) if cutoff else None,
                    limit=max(self.config.history_length, self.config.sequence_length),
                )
                if user
                else []
            )
            sequence = [r.item.key for r in ratings[max(0, len(ratings) - self.config.sequence_length) :]]
            ratings = ratings[-self.config.history_length :]
            history = [
                HistoryItem(item_id=r.item.key, title=r.item.title or "", rating=r.rating, timestamp=r.ts)
                for r in ratings
            ]
            origins = [rating.item.id for rating in ratings]
        candidates = graph.find_nodes(self._dataset, ITEM_LABEL, request.candidates)
        lefts = self._halves(origins, self.config.left_hops)
        rights_by_meeting_node: dict[int, list[_Half]] = defaultdict(list)
        for half in self._halves([node.id for node in candidates.values()], self.config.right_hops):
            rights_by_meeting_node[half.nodes[-1]].append(half)

        joined: list[tuple[tuple[int, ...], tuple[RelRow, ...]]] = []
        for left in lefts:
            if not left.rels:
                continue
            for right in rights_by_meeting_node.get(left.nodes[-1], []):
                if len(left.rels) - len(right.rels) not in (0, 1):
                    continue
                nodes = left.nodes + tuple(reversed(right.nodes))[1:]
                if nodes[0] != nodes[-1] and len(set(nodes)) == len(nodes):
                    joined.append((nodes, left.rels + tuple(reversed(right.rels))))

        info = graph.nodes_by_id({node for nodes, _ in joined for node in nodes})
        paths = [
            RelationPath(
                nodes=tuple(PathNode(label=info[n].label, key=info[n].key, title=info[n].title) for n in nodes),
                hops=tuple(Hop(type=rel.type, forward=rel.src == nodes[i]) for i, rel in enumerate(rels)),
            )
            for nodes, rels in joined
        ]
        return assemble_user_paths(
            request,
            known_user=user is not None,
            history=history,
            candidates={key: CandidateItem(item_id=key, title=node.title or "") for key, node in candidates.items()},
            paths=paths,
            schema=self._schema,
            config=self.config,
            sequence=sequence,
        )

    def _halves(self, starts: list[int], max_length: int) -> list[_Half]:
        """All node-simple walks of 0..max_length hops over path relationship types, level by level, never
        leaving a hub (an attribute node with more than max_hub_degree path relationships), as cypher/paths.cypher."""
        halves = [_Half((start,), ()) for start in dict.fromkeys(starts)]
        frontier = halves
        types = self._schema.path_types
        for level in range(max_length):
            if level:  # the starts are items, never hubs: no lookup for them on every request
                frontier = self._without_hubs(frontier)
            if not frontier:
                break
            by_node: dict[int, list[RelRow]] = defaultdict(list)
            for rel in self._graph.neighbours({h.nodes[-1] for h in frontier}, types):
                by_node[rel.src].append(rel)
                by_node[rel.dst].append(rel)
            extended = []
            for half in frontier:
                end = half.nodes[-1]
                for rel in by_node.get(end, []):
                    other = rel.dst if rel.src == end else rel.src
                    if other not in half.nodes:
                        extended.append(_Half((*half.nodes, other), (*half.rels, rel)))
            halves.extend(extended)
            frontier = extended
        return halves

    def _without_hubs(self, frontier: list[_Half]) -> list[_Half]:
        ends = {half.nodes[-1] for half in frontier}
        attributes = {node for node, info in self._graph.nodes_by_id(ends).items() if info.label != ITEM_LABEL}
        degrees = self._graph.degrees(attributes, self._schema.path_types) if attributes else {}
        hubs = {node for node, degree in degrees.items() if degree > self.config.max_hub_degree}
        return [half for half in frontier if half.nodes[-1] not in hubs]
