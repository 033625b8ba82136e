"""Neo4j routing URIs (neo4j://, for a cluster): accepted wherever a URI is, and on the real test server (a
single instance answers routing too) the loader, the path source and the serving graph give the answers they
give over bolt://; a read right after a write sees it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import neo4j
import pytest

from services.core.settings import Settings
from services.graph_loader.dataset import ProcessedDataset
from services.graph_loader.events import LiveEvent
from services.graph_loader.loader import load_graph
from services.graph_loader.neo4j_connection import async_driver, open_driver
from services.graph_loader.neo4j_writer import Neo4jGraphWriter
from services.ranker.context import RANKING_PATHS
from services.ranker.graphs import open_path_source
from services.ranker.paths import PathConfig, PathRequest
from services.ranker.serving.graph import Neo4jServingGraph
from tests.fixtures.toy import toy_dataset


def routed(settings: Settings) -> Settings:
    """The same server through the routing scheme: bolt → neo4j, bolt+s → neo4j+s, bolt+ssc → neo4j+ssc."""
    scheme, address = str(settings.neo4j_uri).split("://", 1)
    return settings.model_copy(update={"neo4j_uri": f"{scheme.replace('bolt', 'neo4j', 1)}://{address}"})


@pytest.mark.parametrize(
    ("scheme", "driver_class"),
    [
        ("bolt", neo4j.AsyncBoltDriver),
        ("bolt+s", neo4j.AsyncBoltDriver),
        ("bolt+ssc", neo4j.AsyncBoltDriver),
        ("neo4j", neo4j.AsyncNeo4jDriver),
        ("neo4j+s", neo4j.AsyncNeo4jDriver),
        ("neo4j+ssc", neo4j.AsyncNeo4jDriver),
    ],
)
def test_every_bolt_and_routing_scheme_makes_its_driver(scheme: str, driver_class: type) -> None:
    """Built, not connected: the serving driver of each scheme is the direct or the routing one."""
    driver = async_driver(Settings(neo4j_uri=f"{scheme}://graph.example:7687", neo4j_password="unused"))
    try:
        assert isinstance(driver, driver_class)
    finally:
        asyncio.run(driver.close())


@pytest.fixture
def routing_settings(neo4j_settings: Settings) -> Settings:
    return routed(neo4j_settings)


@pytest.fixture
def loaded(tmp_path: Path, dataset_name: str, neo4j_cleanup: list[str], routing_settings: Settings) -> ProcessedDataset:
    """The toy catalogue, loaded through a routing driver (every statement of the loader goes to the leader)."""
    neo4j_cleanup.append(dataset_name)
    dataset, _ = toy_dataset(tmp_path, name=dataset_name)
    driver = open_driver(routing_settings)
    try:
        assert isinstance(driver, neo4j.Neo4jDriver)
        load_graph(
            dataset, Neo4jGraphWriter(driver, database=routing_settings.neo4j_database), target="neo4j", progress=False
        )
    finally:
        driver.close()
    return dataset


@pytest.mark.neo4j
def test_the_path_source_answers_over_routing_as_over_bolt(
    loaded: ProcessedDataset, neo4j_settings: Settings, routing_settings: Settings, tmp_path: Path
) -> None:
    requests = [PathRequest(user_id="bob", candidates=("1", "3")), PathRequest(user_id="alice", candidates=("2",))]
    answers = []
    for settings in (neo4j_settings, routing_settings):
        with open_path_source(
            settings,
            dataset=loaded.name,
            data_hash=loaded.manifest.data_hash,
            schema=loaded.schema,
            embedded_path=tmp_path / "unused.sqlite",
            config=PathConfig(max_hops=3, max_paths_per_pair=100),
        ) as source:
            answers.append(source.fetch(requests))
    direct, routing = answers
    bob, alice = routing
    assert [item.item_id for item in bob.history] == ["2", "6"] and bob.paths
    assert [item.item_id for item in alice.history] == ["1", "3", "4", "5"] and alice.paths
    assert routing == direct


@pytest.mark.neo4j
def test_the_serving_graph_reads_its_writes_over_routing(loaded: ProcessedDataset, routing_settings: Settings) -> None:
    event = LiveEvent(event_id="routed", user_id="bob", item_id="1", rating=5.0, timestamp=100, recorded_at=1.0)

    async def scenario() -> None:
        graph = Neo4jServingGraph(routing_settings, loaded, RANKING_PATHS)
        try:
            before = await graph.state("bob")
            assert (before.data_hash, before.user_version) == (loaded.manifest.data_hash, 0)
            recorded = await graph.record(event)  # a write transaction: the leader
            assert (recorded.created, recorded.user_version) == (True, 1)
            # Reads (followers in a cluster) at once after the write, in the order /rank asks them.
            assert (await graph.state("bob")).user_version == 1
            paths = await graph.fetch(PathRequest(user_id="bob", candidates=("3",)))
            assert [item.item_id for item in paths.history] == ["2", "6", "1"]
            assert await graph.user_items("bob") == ["2", "6", "1"]
        finally:
            await graph.close()

    asyncio.run(scenario())
