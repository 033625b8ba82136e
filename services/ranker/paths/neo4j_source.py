"""Relation paths from Neo4j: `cypher/paths.cypher`, one round trip for a whole batch of requests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

import neo4j

from services.core.cypher import CypherLibrary, cypher_library
from services.graph_loader.neo4j_connection import neo4j_errors
from services.graph_loader.schema import GraphSchema
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

DriverT = TypeVar("DriverT", neo4j.Driver, neo4j.AsyncDriver)


class _Neo4jPaths(Generic[DriverT]):
    """What both Neo4j sources share: the rendered query, its parameters, and reading its rows."""

    def __init__(
        self,
        driver: DriverT,
        *,
        database: str,
        dataset: str,
        schema: GraphSchema,
        config: PathConfig | None = None,
        library: CypherLibrary | None = None,
    ) -> None:
        self.config = config or PathConfig()
        self._driver = driver
        self._database = database
        self._dataset = dataset
        self._schema = schema
        self._query = (library or cypher_library()).render(
            "paths",
            left_hops=self.config.left_hops,
            right_bound=max(1, self.config.right_hops),
            path_types=schema.path_types,
        )

    def _arguments(self, requests: Sequence[PathRequest]) -> dict[str, Any]:
        check_request_batch(requests)
        return {
            "query_": self._query,
            "parameters_": {
                "dataset": self._dataset,
                "history_length": self.config.history_length,
                "sequence_length": self.config.sequence_length,
                "path_types": list(self._schema.path_types),
                "max_hub_degree": self.config.max_hub_degree,
                "right_hops": self.config.right_hops,
                "requests": [_request_parameters(request, self.config) for request in requests],
            },
            "database_": self._database,
            "routing_": neo4j.RoutingControl.READ,
        }

    def _results(self, requests: Sequence[PathRequest], records: list[Any]) -> list[UserPaths]:
        rows = {record["request"]: record for record in records}
        return [self._user_paths(request, rows[index]) for index, request in enumerate(requests)]

    def _user_paths(self, request: PathRequest, row: Any) -> UserPaths:
        history_rows = sorted(row["history"], key=lambda h: (h["ts"], h["idx"]))
        stored = [
            HistoryItem(item_id=h["id"], title=h["title"], rating=h["rating"], timestamp=h["ts"]) for h in history_rows
        ]
        return assemble_user_paths(
            request,
            known_user=row["known_user"],
            history=stored if (given := given_history(request, self.config)) is None else given,
            candidates={c["id"]: CandidateItem(item_id=c["id"], title=c["title"]) for c in row["candidates"]},
            paths=[
                RelationPath(
                    nodes=tuple(PathNode(n["label"], n["key"], n["title"]) for n in path["nodes"]),
                    hops=tuple(Hop(h["type"], h["forward"]) for h in path["hops"]),
                )
                for path in row["paths"]
            ],
            schema=self._schema,
            config=self.config,
            sequence=reversed(row["sequence"]),
        )


class Neo4jPathSource(_Neo4jPaths[neo4j.Driver]):
    def fetch(self, requests: Sequence[PathRequest]) -> list[UserPaths]:
        arguments = self._arguments(requests)
        with neo4j_errors("the path query"):
            records, _, _ = self._driver.execute_query(**arguments)
        return self._results(requests, records)


class AsyncNeo4jPathSource(_Neo4jPaths[neo4j.AsyncDriver]):
    """The same query on the async driver, for the API's event loop."""

    async def fetch(self, requests: Sequence[PathRequest]) -> list[UserPaths]:
        arguments = self._arguments(requests)
        with neo4j_errors("the path query"):
            records, _, _ = await self._driver.execute_query(**arguments)
        return self._results(requests, records)


def _request_parameters(request: PathRequest, config: PathConfig) -> dict[str, Any]:
    given = given_history(request, config)
    return {
        "user_id": request.user_id,
        "candidates": list(request.candidates),
        "cutoff_ts": request.cutoff.timestamp if request.cutoff else None,
        "cutoff_item_idx": request.cutoff.item_idx if request.cutoff else 0,
        "history_ids": None if given is None else [item.item_id for item in given],
    }
