"""The knowledge graph as the API sees it: one round trip for a request's paths, live interactions, health.

Neo4j goes through the async driver; the embedded SQLite graph runs its short operations in a worker
thread so the event loop never blocks on it.

Against a Neo4j cluster (a neo4j:// URI) the reads (graph state, paths, a user's items) go to followers or
read replicas and the writes (interactions, catalogue items, the live schema) to the leader. Every session
shares the driver's bookmark manager (the one `execute_query` uses for the paths): a read waits until its
server holds what this process wrote or read before, so a ranking is never cached under a user's new
version with paths read from a server that has not applied it yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import neo4j
from neo4j.exceptions import ServiceUnavailable, SessionExpired, TransientError

from services.core.cypher import cypher_library
from services.core.errors import GraphNotLoadedError, GraphUnavailableError, UnknownItemsError
from services.core.settings import Settings
from services.graph_loader.catalog import CatalogItem
from services.graph_loader.dataset import ProcessedDataset
from services.graph_loader.embedded import EmbeddedGraph
from services.graph_loader.events import LiveEvent, RecordedEvent
from services.graph_loader.neo4j_connection import async_driver, checked_uri, neo4j_errors
from services.ranker.paths.embedded_source import EmbeddedPathSource
from services.ranker.paths.models import PathConfig, PathRequest, UserPaths
from services.ranker.paths.neo4j_source import AsyncNeo4jPathSource

T = TypeVar("T")


@dataclass(frozen=True)
class GraphState:
    """What a ranking depends on in the graph besides its paths, read in one round trip before the cache."""

    data_hash: str
    load_id: str  # changes with every completed load: cached rankings of an earlier load are never found
    user_version: int  # the user's live events so far (durable): cached rankings of an older version neither


class ServingGraph(Protocol):
    name: str

    async def fetch(self, request: PathRequest) -> UserPaths:
        """The user's stored history (live interactions included) and the paths to the candidates."""
        ...

    async def record(self, event: LiveEvent) -> RecordedEvent:
        """Append the event and fold it into the graph in one transaction; GraphError if its item is missing."""
        ...

    async def state(self, user_id: str | None) -> GraphState:
        """The complete load the graph holds and the user's version; GraphNotLoadedError if there is no load."""
        ...

    async def user_items(self, user_id: str) -> list[str]:
        """Every item the user has interacted with (live events included), oldest first."""
        ...

    async def put_item(self, item: CatalogItem) -> bool:
        """Create or replace a living-catalogue item and its graph nodes in one transaction; True if new."""
        ...

    async def close(self) -> None: ...


def _graph_state(status: dict[str, object] | None, version: int, dataset: str, where: str) -> GraphState:
    if not status or status.get("status") != "complete":
        raise GraphNotLoadedError(f"{where} holds no complete load of {dataset}; run `kgrank graph load`")
    catalog = f"{status.get('catalog_items')}@{status.get('catalog_changed')}"
    load_id = f"{status['data_hash']}:{status['split']}:{status['completed_at']}:{catalog}"
    return GraphState(data_hash=str(status["data_hash"]), load_id=load_id, user_version=version)


async def _retried(attempt: Callable[[], Awaitable[T]]) -> T:
    """The driver's own retries are off (they would wait out an unreachable server). A broken pooled
    connection (the server restarted since it was opened) is retried once at once, a transient error
    (a deadlock) twice after a short pause; an unreachable server still fails in milliseconds."""
    for tries in itertools.count(1):
        try:
            return await attempt()
        except (ServiceUnavailable, SessionExpired):
            if tries >= 2:
                raise
        except TransientError:
            if tries >= 3:
                raise
            await asyncio.sleep(0.05 * tries)
    raise AssertionError("unreachable")


def _missing_item(item_id: str, dataset: str) -> UnknownItemsError:
    return UnknownItemsError(f"unknown item id: {item_id!r} (not in the graph of {dataset})", item_ids=[item_id])


class Neo4jServingGraph:
    name = "neo4j"

    def __init__(self, settings: Settings, dataset: ProcessedDataset, config: PathConfig) -> None:
        # Not connected here: the API starts while Neo4j is down and answers degraded until it is up.
        self._driver = async_driver(settings)
        uri = checked_uri(settings)
        self._database = settings.neo4j_database
        self._timeout_s = settings.neo4j_timeout_s
        self._dataset = dataset.name
        self._where = uri
        self._library = cypher_library()
        self._schema = dataset.schema
        self._schema_ready = False
        self._paths = AsyncNeo4jPathSource(
            self._driver, database=self._database, dataset=dataset.name, schema=dataset.schema, config=config
        )

    @contextlib.asynccontextmanager
    async def _deadline(self, action: str) -> AsyncIterator[None]:
        """The driver's own limits apply per attempt: this bounds the whole, and names what failed."""
        try:
            async with asyncio.timeout(self._timeout_s):
                with neo4j_errors(action, self._where):
                    yield
        except TimeoutError as e:
            raise GraphUnavailableError(
                f"Neo4j at {self._where} is unreachable or too slow: no answer within {self._timeout_s:g} s "
                "(KGRANK_NEO4J_TIMEOUT_S)"
            ) from e

    async def fetch(self, request: PathRequest) -> UserPaths:
        async with self._deadline("the paths query"):
            (paths,) = await _retried(lambda: self._paths.fetch([request]))
        return paths

    async def record(self, event: LiveEvent) -> RecordedEvent:
        library, dataset = self._library, self._dataset

        async def append(tx: neo4j.AsyncManagedTransaction) -> RecordedEvent | None:
            parameters = event.model_dump(exclude={"timestamp"}) | {"ts": event.timestamp}
            row = await (await tx.run(library["record_event"], parameters, dataset=dataset)).single()
            if row is None:
                return None
            stored = LiveEvent(**{key: row[key] for key in LiveEvent.model_fields})
            if row["created"]:
                user = [{"id": event.user_id, "idx": None}]
                await (await tx.run(library["load_users"], dataset=dataset, rows=user)).consume()
                await (await tx.run(library["load_ratings"], dataset=dataset, rows=[event.rating_row()])).consume()
            state = await (await tx.run(library["user_state"], dataset=dataset, user_id=stored.user_id)).single()
            return RecordedEvent(event=stored, created=row["created"], user_version=state["version"] if state else 0)

        async with self._deadline("recording an interaction"):
            recorded = await self._write(append)
        if recorded is None:
            raise _missing_item(event.item_id, dataset)
        return recorded

    async def state(self, user_id: str | None) -> GraphState:
        async with self._deadline("the graph state query"):
            records = await self._read("user_state", user_id=user_id)
        row = records[0].data() if records else {}
        return _graph_state(row, int(row.get("version", 0)), self._dataset, self._where)

    async def put_item(self, item: CatalogItem) -> bool:
        library, dataset = self._library, self._dataset

        async def write(tx: neo4j.AsyncManagedTransaction) -> bool:
            entry = {"item_id": item.item_id, "title": item.title, "recorded_at": item.recorded_at}
            attributes = json.dumps(item.attributes, sort_keys=True)
            row = await (await tx.run(library["catalog_put"], entry, dataset=dataset, attributes=attributes)).single()
            node = [{"id": item.item_id, "idx": None, "title": item.title, "properties": {}}]
            await (await tx.run(library["load_items"], dataset=dataset, rows=node)).consume()
            rel_types = list(self._schema.attributes.values())
            clear = library["item_attributes_clear"]
            await (await tx.run(clear, dataset=dataset, item_id=item.item_id, rel_types=rel_types)).consume()
            for label, names in item.attributes.items():
                statement = library.render("load_attributes", label=label, rel_type=self._schema.attributes[label])
                rows = [{"item": item.item_id, "name": name} for name in names]
                await (await tx.run(statement, dataset=dataset, rows=rows)).consume()
            return bool(row and row["created"])

        async with self._deadline("writing a catalogue item"):
            return await self._write(write)

    async def user_items(self, user_id: str) -> list[str]:
        async with self._deadline("the user's items query"):
            return [record["id"] for record in await self._read("user_items", user_id=user_id)]

    async def _read(self, statement: str, **parameters: object) -> list[neo4j.Record]:
        """One read-only statement of the library in auto-commit: half the round trips of a managed
        transaction (the state read runs on every /rank)."""

        async def attempt() -> list[neo4j.Record]:
            async with self._session(neo4j.READ_ACCESS) as session:
                result = await session.run(self._library[statement], parameters, dataset=self._dataset)
                return [record async for record in result]

        return await _retried(attempt)

    async def _write(self, work: Callable[[neo4j.AsyncManagedTransaction], Awaitable[T]]) -> T:
        """`work` in one managed write transaction, after the live records' schema exists."""
        if not self._schema_ready:
            await self._ensure_live_schema()

        async def attempt() -> T:
            async with self._session(neo4j.WRITE_ACCESS) as session:
                return await session.execute_write(work)

        return await _retried(attempt)

    async def _ensure_live_schema(self) -> None:
        """The constraints and index the live event log and catalogue need (a graph loaded by an older kgrank
        lacks them): once per process."""
        async with self._session(neo4j.WRITE_ACCESS) as session:
            for statement in ("constraint_event", "index_event_user", "constraint_catalog"):
                await (await session.run(self._library[statement])).consume()
        self._schema_ready = True

    def _session(self, access_mode: str) -> neo4j.AsyncSession:
        return self._driver.session(
            database=self._database,
            default_access_mode=access_mode,
            bookmark_manager=self._driver.execute_query_bookmark_manager,
        )

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
        self._schema = dataset.schema
        self._paths = EmbeddedPathSource(self._graph, dataset=dataset.name, schema=dataset.schema, config=config)

    async def fetch(self, request: PathRequest) -> UserPaths:
        (paths,) = await asyncio.to_thread(self._paths.fetch, [request])
        return paths

    async def record(self, event: LiveEvent) -> RecordedEvent:
        recorded = await asyncio.to_thread(self._graph.record_event, self._dataset, event)
        if recorded is None:
            raise _missing_item(event.item_id, self._dataset)
        return recorded

    async def state(self, user_id: str | None) -> GraphState:
        status, version = await asyncio.to_thread(self._graph.user_state, self._dataset, user_id or "")
        return _graph_state(status, version, self._dataset, self._where)

    async def user_items(self, user_id: str) -> list[str]:
        return await asyncio.to_thread(self._graph.user_items, self._dataset, user_id)

    async def put_item(self, item: CatalogItem) -> bool:
        return await asyncio.to_thread(self._graph.put_catalog_item, self._dataset, item, self._schema)

    async def close(self) -> None:
        self._graph.close()
