"""The Neo4j writer and path source pass the same contracts as the embedded ones, on a real server."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.core.cypher import cypher_library
from services.graph_loader.dataset import ProcessedDataset
from services.graph_loader.embedded import EmbeddedGraph
from services.graph_loader.loader import load_graph
from services.graph_loader.neo4j_writer import Neo4jGraphWriter
from services.graph_loader.prepare import prepare_dataset
from services.ranker.context import RANKING_PATHS
from services.ranker.paths import PathConfig, PathRequest
from services.ranker.paths.embedded_source import EmbeddedPathSource
from services.ranker.paths.neo4j_source import Neo4jPathSource
from services.ranker.paths.render import path_cypher
from services.ranker.serving.graph import Neo4jServingGraph
from tests.contracts.graph_writer import GraphWriterContract, ServingGraphFactory
from tests.contracts.path_source import MakeSource, PathSourceContract
from tests.fixtures.toy import toy_dataset

pytestmark = pytest.mark.neo4j


class TestNeo4jWriter(GraphWriterContract):
    @pytest.fixture
    def dataset(self, ml_raw: Path, tmp_path: Path, dataset_name: str, neo4j_cleanup: list[str]) -> ProcessedDataset:
        neo4j_cleanup.append(dataset_name)
        return prepare_dataset("ml-latest-small", ml_raw, tmp_path / "data", name=dataset_name)

    @pytest.fixture
    def writer(self, neo4j_driver, neo4j_settings) -> Neo4jGraphWriter:
        return Neo4jGraphWriter(neo4j_driver, database=neo4j_settings.neo4j_database)

    @pytest.fixture
    def serving_graph(self, neo4j_settings) -> ServingGraphFactory:
        return lambda dataset: Neo4jServingGraph(neo4j_settings, dataset, RANKING_PATHS)

    def test_counts_equal_the_embedded_graph(
        self, writer: Neo4jGraphWriter, dataset: ProcessedDataset, tmp_path: Path
    ) -> None:
        graph = EmbeddedGraph(tmp_path / "graph.sqlite")
        try:
            embedded = load_graph(dataset, graph, target="embedded", progress=False)
        finally:
            graph.close()
        assert load_graph(dataset, writer, target="neo4j", progress=False).counts == embedded.counts

    def test_constraints_exist(self, writer: Neo4jGraphWriter, dataset: ProcessedDataset, neo4j_driver) -> None:
        load_graph(dataset, writer, target="neo4j", progress=False)
        records, _, _ = neo4j_driver.execute_query("SHOW CONSTRAINTS YIELD name, type, labelsOrTypes, properties")
        constraints = {r["name"]: (r["type"], r["labelsOrTypes"], r["properties"]) for r in records}
        assert constraints["kgrank_item_id"] == ("UNIQUENESS", ["Item"], ["dataset", "id"])
        assert constraints["kgrank_actor_name"] == ("UNIQUENESS", ["Actor"], ["dataset", "name"])
        assert constraints["kgrank_dataset_name"] == ("UNIQUENESS", ["KgrankDataset"], ["name"])
        assert constraints["kgrank_event_id"] == ("UNIQUENESS", ["KgrankEvent"], ["dataset", "id"])


class TestNeo4jPaths(PathSourceContract):
    @pytest.fixture
    def make_source(
        self, tmp_path: Path, dataset_name: str, neo4j_cleanup: list[str], neo4j_driver, neo4j_settings
    ) -> MakeSource:
        neo4j_cleanup.append(dataset_name)
        dataset, _ = toy_dataset(tmp_path, name=dataset_name)
        writer = Neo4jGraphWriter(neo4j_driver, database=neo4j_settings.neo4j_database)
        load_graph(dataset, writer, target="neo4j", progress=False)
        return lambda config: Neo4jPathSource(
            neo4j_driver,
            database=neo4j_settings.neo4j_database,
            dataset=dataset.name,
            schema=dataset.schema,
            config=config,
        )


@pytest.fixture
def loaded_toy(tmp_path: Path, dataset_name: str, neo4j_cleanup: list[str], neo4j_driver, neo4j_settings):
    neo4j_cleanup.append(dataset_name)
    dataset, _ = toy_dataset(tmp_path, name=dataset_name)
    load_graph(
        dataset, Neo4jGraphWriter(neo4j_driver, database=neo4j_settings.neo4j_database), target="neo4j", progress=False
    )
    return dataset


def test_browser_queries_draw_exactly_each_path(loaded_toy: ProcessedDataset, neo4j_driver, neo4j_settings) -> None:
    """Every explanation query, including names with quotes and backslashes, matches its one path."""
    source = Neo4jPathSource(
        neo4j_driver,
        database=neo4j_settings.neo4j_database,
        dataset=loaded_toy.name,
        schema=loaded_toy.schema,
        config=PathConfig(max_hops=3, max_paths_per_pair=100),
    )
    (bob,) = source.fetch([PathRequest(user_id="bob", candidates=("1", "3", "4", "5"))])
    (alice,) = source.fetch([PathRequest(user_id="alice", candidates=("2", "6"))])
    paths = bob.paths + alice.paths
    assert len(paths) >= 10
    assert {path.length for path in paths} == {1, 2, 3}
    for path in paths:
        records, _, _ = neo4j_driver.execute_query(path_cypher(path, dataset=loaded_toy.name, schema=loaded_toy.schema))
        assert len(records) == 1, path
        drawn = records[0]["p"]
        assert [node.get("id") or node.get("name") for node in drawn.nodes] == [n.key for n in path.nodes]
        assert [rel.type for rel in drawn.relationships] == [hop.type for hop in path.hops]


def test_quoted_names_survive_the_browser_query(loaded_toy: ProcessedDataset, neo4j_driver) -> None:
    from services.ranker.paths import Hop, PathNode, RelationPath

    actor = 'O\'Brien "Bob" \\ Jr.'
    path = RelationPath(
        nodes=(PathNode(label="Item", key="6"), PathNode(label="Actor", key=actor)),
        hops=(Hop(type="HAS_ACTOR", forward=True),),
    )
    records, _, _ = neo4j_driver.execute_query(path_cypher(path, dataset=loaded_toy.name, schema=loaded_toy.schema))
    assert [r["p"].end_node["name"] for r in records] == [actor]


def test_every_statement_compiles(neo4j_driver) -> None:
    """EXPLAIN plans a statement without running it: syntax or planning errors show up here first.

    Schema commands and the batched wipe (CALL … IN TRANSACTIONS) cannot run inside EXPLAIN's
    transaction; the loader tests run those for real.
    """
    library = cypher_library()
    slot_values = {
        "label": "Genre",
        "rel_type": "HAS_GENRE",
        "left_hops": 1,
        "right_bound": 1,
        "path_types": ("HAS_GENRE",),
    }
    parameters = {
        "dataset": "x",
        "requests": [],
        "history_length": 20,
        "path_types": ["HAS_GENRE"],
        "rows": [],
        "data_hash": "h",
        "split": "all",
        "kgrank_version": "0",
        "user_id": "u",
        "item_id": "i",
        "history_id": "h",
        "candidate_id": "c",
    }
    explained = []
    for name in library.names():
        if name.startswith("constraint_") or name.startswith(("dataset_wipe", "database_clear")):
            continue
        statement = library.statement(name)
        query = statement.render(**{slot: slot_values[slot] for slot in statement.slots})
        neo4j_driver.execute_query(f"EXPLAIN {query}", parameters_=parameters)
        explained.append(name)
    assert {"paths", "load_ratings", "load_attributes", "reference_shortest_path"} <= set(explained)


def test_neo4j_and_embedded_agree_on_generated_data(
    ml_raw: Path, tmp_path: Path, dataset_name: str, neo4j_cleanup: list[str], neo4j_driver, neo4j_settings
) -> None:
    import random

    neo4j_cleanup.append(dataset_name)
    dataset = prepare_dataset("ml-latest-small", ml_raw, tmp_path / "data", name=dataset_name)
    load_graph(
        dataset, Neo4jGraphWriter(neo4j_driver, database=neo4j_settings.neo4j_database), target="neo4j", progress=False
    )
    graph = EmbeddedGraph(tmp_path / "graph.sqlite")
    load_graph(dataset, graph, target="embedded", progress=False)
    rng = random.Random(5)
    items = [item.id for item in dataset.items]
    requests = [
        PathRequest(user_id=rng.choice(dataset.users), candidates=tuple(rng.sample(items, 20))) for _ in range(25)
    ]
    for hops in (1, 2, 3):
        config = PathConfig(max_hops=hops, max_paths_per_pair=4)
        neo4j = Neo4jPathSource(
            neo4j_driver,
            database=neo4j_settings.neo4j_database,
            dataset=dataset.name,
            schema=dataset.schema,
            config=config,
        ).fetch(requests)
        embedded = EmbeddedPathSource(graph, dataset=dataset.name, schema=dataset.schema, config=config).fetch(requests)
        assert neo4j == embedded
        assert hops == 1 or sum(len(r.paths) for r in neo4j) > 100
    graph.close()
