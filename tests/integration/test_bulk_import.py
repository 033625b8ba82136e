"""`kgrank graph load --bulk` through Neo4j's real offline importer, on a scratch Neo4j of the test's own (the
importer replaces the whole database and restarts the server, so the shared test server is left alone).

The bulk-loaded graph must be the online loader's graph: same counts, same relation paths as the embedded load
of the same rows (quotes and backslashes in titles and names included), and a database holding anything is
only replaced when asked, one holding live records never."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kgrank.graph_cli import load_embedded
from services.api.local import free_port
from services.core.settings import Settings
from services.graph_loader.dataset import ProcessedDataset
from services.graph_loader.embedded import EmbeddedGraph
from services.graph_loader.events import LiveEvent
from services.graph_loader.neo4j_connection import open_driver
from services.graph_loader.neo4j_writer import Neo4jGraphWriter
from services.ranker.paths import HistoryCutoff, PathConfig, PathRequest
from services.ranker.paths.embedded_source import EmbeddedPathSource
from services.ranker.paths.neo4j_source import Neo4jPathSource
from services.ranker.serving.graph import Neo4jServingGraph
from tests.conftest import ROOT, unavailable
from tests.contracts.path_source import texts
from tests.fixtures.toy import toy_dataset

pytestmark = pytest.mark.neo4j


@pytest.fixture(scope="module")
def scratch_neo4j(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, dict[str, str]]]:
    """A Neo4j of its own (the jars `make neo4j-up` resolved), and the environment its import command needs."""
    jars = ROOT / ".neo4j" / "lib"
    if not (jars / ".pom.sha256").is_file():
        unavailable("needs the Neo4j jars (make neo4j-up fetches them)")
    home = tmp_path_factory.mktemp("bulk-neo4j")
    (home / "lib").symlink_to(jars)
    (home / "password").write_text("bulk-test-password")
    bolt = free_port()
    env = os.environ | {
        "NEO4J_HOME": str(home),
        "NEO4J_BOLT_ADDRESS": f"127.0.0.1:{bolt}",
        "NEO4J_HTTP_ADDRESS": f"127.0.0.1:{free_port()}",
        "NEO4J_HEAP": "384m",
        "NEO4J_PAGECACHE": "64m",
        "NEO4J_IMPORT_HEAP": "512m",
        "KGRANK_NEO4J_URI": f"bolt://127.0.0.1:{bolt}",
        "KGRANK_NEO4J_USER": "neo4j",
        "KGRANK_NEO4J_PASSWORD": "bulk-test-password",
        "KGRANK_NEO4J_IMPORT_COMMAND": f"{ROOT / 'deploy/neo4j/neo4j.sh'} import",
    }
    script = ROOT / "deploy" / "neo4j" / "neo4j.sh"
    subprocess.run([script, "up"], env=env, check=True, capture_output=True, timeout=300)
    try:
        yield Settings(neo4j_uri=env["KGRANK_NEO4J_URI"], neo4j_password="bulk-test-password"), env
    finally:
        subprocess.run([script, "down"], env=env, check=False, capture_output=True, timeout=120)


def kgrank(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kgrank", *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )


def paths_by_source(dataset: ProcessedDataset, settings: Settings, embedded: Path) -> tuple[list[str], list[str]]:
    config = PathConfig(max_hops=3, max_paths_per_pair=100)
    request = PathRequest(user_id="alice", candidates=("2", "5", "6"), cutoff=HistoryCutoff(timestamp=30))
    driver = open_driver(settings)
    graph = EmbeddedGraph(embedded)
    try:
        neo4j_source = Neo4jPathSource(
            driver, database="neo4j", dataset=dataset.name, schema=dataset.schema, config=config
        )
        embedded_source = EmbeddedPathSource(graph, dataset=dataset.name, schema=dataset.schema, config=config)
        (from_neo4j,) = neo4j_source.fetch([request])
        (from_embedded,) = embedded_source.fetch([request])
    finally:
        driver.close()
        graph.close()
    return texts(from_neo4j), texts(from_embedded)


def test_bulk_load_equals_the_online_graph_and_guards_the_database(
    scratch_neo4j: tuple[Settings, dict[str, str]], tmp_path: Path
) -> None:
    settings, env = scratch_neo4j
    dataset, data = toy_dataset(tmp_path)
    embedded = tmp_path / "graph.sqlite"
    online = load_embedded(dataset, embedded, split="all")

    bulk = kgrank(env, "graph", "load", "--data", str(data), "--bulk")
    assert bulk.returncode == 0, bulk.stdout + bulk.stderr
    driver = open_driver(settings)
    try:
        writer = Neo4jGraphWriter(driver, database="neo4j")
        assert writer.counts(dataset.name) == online.counts
        titles, _, _ = driver.execute_query(
            "MATCH (i:Item {dataset: $dataset}) RETURN i.id AS id, i.title AS title", dataset=dataset.name
        )
        assert {r["id"]: r["title"] for r in titles} == {item.id: item.title for item in dataset.items}
    finally:
        driver.close()
    from_neo4j, from_embedded = paths_by_source(dataset, settings, embedded)
    assert from_neo4j == from_embedded and from_neo4j  # quotes, backslashes and links all survived the CSVs

    # Not empty: replaced only when asked.
    again = kgrank(env, "graph", "load", "--data", str(data), "--bulk")
    assert again.returncode == 2 and "--replace-database" in again.stderr
    replaced = kgrank(env, "graph", "load", "--data", str(data), "--bulk", "--replace-database")
    assert replaced.returncode == 0, replaced.stdout + replaced.stderr

    # A live record exists nowhere else: never replaced, even when asked.
    asyncio.run(_post_event(settings, dataset))
    refused = kgrank(env, "graph", "load", "--data", str(data), "--bulk", "--replace-database")
    assert refused.returncode == 2 and "live records" in refused.stderr
    online_again = kgrank(env, "graph", "load", "--data", str(data))  # the online loader keeps it
    assert online_again.returncode == 0 and "1 live events replayed" in online_again.stdout


async def _post_event(settings: Settings, dataset: ProcessedDataset) -> None:
    graph = Neo4jServingGraph(settings, dataset, PathConfig())
    try:
        await graph.record(
            LiveEvent(event_id="e-1", user_id="carol", item_id="2", rating=4.0, timestamp=99, recorded_at=time.time())
        )
    finally:
        await graph.close()
