"""The one place a graph is opened from settings: Neo4j when a URI is set, else the embedded graph file.

`open_path_source` gives the synchronous path source commands and training use (checked to hold a complete
load); `open_serving_graph` the asynchronous graph the API serves from (not connected yet: the API starts
while Neo4j is down). Both get their Neo4j driver from services/graph_loader/neo4j_connection.py.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import neo4j

from services.core.cypher import cypher_library
from services.core.errors import GraphNotLoadedError
from services.core.settings import Settings
from services.graph_loader.dataset import ProcessedDataset
from services.graph_loader.embedded import EmbeddedGraph
from services.graph_loader.neo4j_connection import open_driver
from services.graph_loader.schema import GraphSchema
from services.ranker.paths.embedded_source import EmbeddedPathSource
from services.ranker.paths.models import PathConfig, PathSource
from services.ranker.paths.neo4j_source import Neo4jPathSource
from services.ranker.serving.graph import EmbeddedServingGraph, Neo4jServingGraph, ServingGraph

logger = logging.getLogger(__name__)


@contextmanager
def open_path_source(
    settings: Settings,
    *,
    dataset: str,
    data_hash: str,
    schema: GraphSchema,
    embedded_path: Path,
    config: PathConfig | None = None,
) -> Iterator[PathSource]:
    """Yield a PathSource over a graph that holds a complete load of `dataset`; close it afterwards."""
    if settings.neo4j_uri:
        driver = open_driver(settings)
        try:
            status = neo4j_dataset_status(driver, settings, dataset)
            _check_loaded(status, dataset=dataset, data_hash=data_hash, where=settings.neo4j_uri)
            yield Neo4jPathSource(
                driver, database=settings.neo4j_database, dataset=dataset, schema=schema, config=config
            )
        finally:
            driver.close()
    else:
        if not embedded_path.is_file():
            raise GraphNotLoadedError(
                f"no embedded graph at {embedded_path}; run `kgrank graph load` first",
                path=str(embedded_path),
            )
        graph = EmbeddedGraph(embedded_path)
        try:
            _check_loaded(graph.status(dataset), dataset=dataset, data_hash=data_hash, where=str(embedded_path))
            yield EmbeddedPathSource(graph, dataset=dataset, schema=schema, config=config)
        finally:
            graph.close()


def neo4j_dataset_status(driver: neo4j.Driver, settings: Settings, dataset: str) -> dict[str, object]:
    """The load record of `dataset` in the settings' Neo4j database (`status` None when it was never loaded)."""
    records, _, _ = driver.execute_query(
        cypher_library()["dataset_status"],
        dataset=dataset,
        database_=settings.neo4j_database,
        routing_=neo4j.RoutingControl.READ,
    )
    return records[0].data()


def holds_complete_load(status: dict[str, object], data_hash: str) -> bool:
    """Whether a load record says the graph holds all of exactly the processed data with this hash."""
    return status.get("status") == "complete" and status.get("data_hash") == data_hash


def _check_loaded(status: dict[str, object] | None, *, dataset: str, data_hash: str, where: str) -> None:
    if not status or status.get("status") != "complete":
        state = (status or {}).get("status") or "not loaded"
        raise GraphNotLoadedError(
            f"{where} holds no complete load of {dataset} ({state}); run `kgrank graph load`", dataset=dataset
        )
    if status.get("data_hash") != data_hash:
        logger.warning("%s holds a different version of %s than the processed data; reload it", where, dataset)


def open_serving_graph(
    settings: Settings, dataset: ProcessedDataset, data_dir: Path, config: PathConfig
) -> ServingGraph:
    if settings.neo4j_uri:
        return Neo4jServingGraph(settings, dataset, config)
    return EmbeddedServingGraph(settings.graph_path or data_dir / "graph.sqlite", dataset, config)
