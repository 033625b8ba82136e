"""The knowledge graph as the API sees it: one round trip for a request's paths, live interactions, health.

Neo4j goes through the async driver; the embedded SQLite graph runs its short operations in a worker
thread so the event loop never blocks on it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

import neo4j
from neo4j.exceptions import ConfigurationError

from services.core.cypher import cypher_library
from services.core.errors import ConfigError, GraphError, GraphNotLoadedError, GraphUnavailableError
from services.core.settings import Settings
from services.graph_loader.dataset import ProcessedDataset
from services.graph_loader.embedded import EmbeddedGraph
from services.graph_loader.neo4j_connection import checked_uri, neo4j_errors
from services.graph_loader.records import GraphPart
from services.graph_loader.schema import ITEM_LABEL
from services.ranker.paths.embedded_source import EmbeddedPathSource
from services.ranker.paths.models import PathConfig, PathRequest, UserPaths
from services.ranker.paths.neo4j_source import AsyncNeo4jPathSource


class ServingGraph(Protocol):
    name: str

    async def fetch(self, request: PathRequest) -> UserPaths:
        """The user's stored history (live interactions included) and the paths to the candidates."""
        ...

    async def record(self, *, user_id: str, item_id: str, rating: float | None, timestamp: int) -> None: ...

    async def version(self) -> str:
        """The data hash of the complete load the graph holds; GraphNotLoadedError if none."""
        ...

    async def close(self) -> None: ...


def _loaded_version(status: dict[str, object] | None, dataset: str, where: str) -> str:
    if not status or status.get("status") != "complete":
        raise GraphNotLoadedError(f"{where} holds no complete load of {dataset}; run `kgrank graph load`")
    return str(status["data_hash"])


class Neo4jServingGraph:
    name = "neo4j"

    def __init__(self, settings: Settings, dataset: ProcessedDataset, config: PathConfig) -> None:
        password = settings.neo4j_password.get_secret_value() if settings.neo4j_password else None
        uri = checked_uri(settings)
        # No connectivity check here: the API starts while Neo4j is down and answers degraded until it is up.
        try:
            self._driver = neo4j.AsyncGraphDatabase.driver(
                uri,
                auth=(settings.neo4j_user, password) if password is not None else None,
                connection_timeout=settings.neo4j_timeout_s,
                connection_acquisition_timeout=settings.neo4j_timeout_s,
                max_transaction_retry_time=settings.neo4j_timeout_s,
                notifications_min_severity="OFF",
            )
        except (ConfigurationError, ValueError) as e:
            raise ConfigError(f"invalid Neo4j URI {uri!r} (KGRANK_NEO4J_URI): {e}") from e
        self._database = settings.neo4j_database
        self._timeout_s = settings.neo4j_timeout_s
        self._dataset = dataset.name
        self._where = uri
        self._library = cypher_library()
        self._paths = AsyncNeo4jPathSource(
            self._driver, database=self._database, dataset=dataset.name, schema=dataset.schema, config=config
        )

    @contextlib.asynccontextmanager
    async def _deadline(self) -> AsyncIterator[None]:
        """The driver's own limits apply per attempt and its retries back off on top: this bounds the whole."""
        try:
            async with asyncio.timeout(self._timeout_s):
                yield
        except TimeoutError as e:
            raise GraphUnavailableError(
                f"Neo4j at {self._where} is unreachable or too slow: no answer within {self._timeout_s:g} s "
                "(KGRANK_NEO4J_TIMEOUT_S)"
            ) from e

    async def fetch(self, request: PathRequest) -> UserPaths:
        async with self._deadline():
            (paths,) = await self._paths.fetch([request])
        return paths

    async def record(self, *, user_id: str, item_id: str, rating: float | None, timestamp: int) -> None:
        records = await self._query(
            "record_rating",
            neo4j.RoutingControl.WRITE,
            dataset=self._dataset,
            user_id=user_id,
            item_id=item_id,
            rating=rating,
            ts=timestamp,
        )
        if not records or records[0]["written"] != 1:
            raise GraphError(f"item {item_id!r} is not in the graph of {self._dataset}")

    async def version(self) -> str:
        records = await self._query("dataset_status", neo4j.RoutingControl.READ, dataset=self._dataset)
        return _loaded_version(records[0].data() if records else None, self._dataset, self._where)

    async def _query(self, name: str, routing: neo4j.RoutingControl, **parameters: object) -> list[neo4j.Record]:
        async with self._deadline():
            with neo4j_errors(name, self._where):
                records, _, _ = await self._driver.execute_query(
                    self._library[name], parameters_=parameters, database_=self._database, routing_=routing
                )
        return records

    async def close(self) -> None:
        await self._driver.close()


class EmbeddedServingGraph:
    name = "embedded"

    def __init__(self, path: Path, dataset: ProcessedDataset, config: PathConfig) -> None:
        if not path.is_file():
            raise GraphNotLoadedError(f"no embedded graph at {path}; run `kgrank graph load --data DIR --split all`")
        self._graph = EmbeddedGraph(path)
        self._dataset = dataset.name
        self._where = str(path)
        self._paths = EmbeddedPathSource(self._graph, dataset=dataset.name, schema=dataset.schema, config=config)

    async def fetch(self, request: PathRequest) -> UserPaths:
        (paths,) = await asyncio.to_thread(self._paths.fetch, [request])
        return paths

    async def record(self, *, user_id: str, item_id: str, rating: float | None, timestamp: int) -> None:
        await asyncio.to_thread(self._record, user_id, item_id, rating, timestamp)

    def _record(self, user_id: str, item_id: str, rating: float | None, timestamp: int) -> None:
        if item_id not in self._graph.find_nodes(self._dataset, ITEM_LABEL, [item_id]):
            raise GraphError(f"item {item_id!r} is not in the graph of {self._dataset}")
        self._graph.write(self._dataset, GraphPart("users", []), [{"id": user_id, "idx": None}])
        self._graph.write(
            self._dataset,
            GraphPart("ratings", []),
            [{"user": user_id, "item": item_id, "rating": rating, "ts": timestamp}],
        )

    async def version(self) -> str:
        status = await asyncio.to_thread(self._graph.status, self._dataset)
        return _loaded_version(status, self._dataset, self._where)

    async def close(self) -> None:
        self._graph.close()


def open_serving_graph(
    settings: Settings, dataset: ProcessedDataset, data_dir: Path, config: PathConfig
) -> ServingGraph:
    if settings.neo4j_uri:
        return Neo4jServingGraph(settings, dataset, config)
    return EmbeddedServingGraph(settings.graph_path or data_dir / "graph.sqlite", dataset, config)
