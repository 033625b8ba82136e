"""The real ml-latest-small end to end: prepare (610 / 3,650 / 90,274), load Neo4j and embedded, compare."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.core.settings import Settings
from services.graph_loader.dataset import ProcessedDataset
from services.graph_loader.embedded import EmbeddedGraph
from services.graph_loader.neo4j_connection import open_driver
from services.ranker.paths import HistoryCutoff, PathConfig, PathRequest
from services.ranker.paths.embedded_source import EmbeddedPathSource
from services.ranker.paths.neo4j_source import Neo4jPathSource
from tests.unit.test_cli import kgrank, kill_when

pytestmark = [pytest.mark.real_data, pytest.mark.neo4j]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory, real_ml_dir: Path) -> tuple[Path, str]:
    import uuid

    name = f"test-real-{uuid.uuid4().hex[:8]}"
    out = tmp_path_factory.mktemp("real") / "data"
    result = kgrank(
        "data", "prepare", "--dataset", "ml-latest-small", "--raw", real_ml_dir, "--out", out, "--name", name
    )
    assert result.returncode == 0, result.stderr
    assert f"{name}: 610 users, 3,650 items, 90,274 interactions" in result.stdout
    return out, name


@pytest.fixture(scope="module")
def neo4j_env(neo4j_settings: Settings, prepared: tuple[Path, str]) -> Iterator[dict[str, str]]:
    from services.graph_loader.neo4j_writer import Neo4jGraphWriter

    env = {"KGRANK_NEO4J_URI": neo4j_settings.neo4j_uri or "", "KGRANK_NEO4J_USER": neo4j_settings.neo4j_user}
    if neo4j_settings.neo4j_password:
        env["KGRANK_NEO4J_PASSWORD"] = neo4j_settings.neo4j_password.get_secret_value()
    yield env
    driver = open_driver(neo4j_settings)
    Neo4jGraphWriter(driver, database=neo4j_settings.neo4j_database).drop(prepared[1])
    driver.close()


def test_stats_file(prepared: tuple[Path, str]) -> None:
    stats = json.loads((prepared[0] / "stats.json").read_text())
    assert (stats["users"], stats["items"], stats["interactions"]) == (610, 3650, 90274)
    assert stats["split_interactions"] == {"train": 89054, "val": 610, "test": 610}


@pytest.fixture(scope="module")
def loaded(prepared: tuple[Path, str], neo4j_env: dict[str, str]) -> tuple[Path, str]:
    """The real graph loaded into Neo4j and the embedded graph by the CLI."""
    for env in (neo4j_env, None):
        result = kgrank("graph", "load", "--data", prepared[0], env=env)
        assert result.returncode == 0, result.stderr
    return prepared


def test_neo4j_and_embedded_hold_the_same_graph(loaded: tuple[Path, str], neo4j_env: dict[str, str]) -> None:
    data, _ = loaded
    neo4j = json.loads((data / "graph-load-neo4j.json").read_text())
    embedded = json.loads((data / "graph-load-embedded.json").read_text())
    assert neo4j["counts"] == embedded["counts"]
    assert neo4j["counts"]["nodes"] == {
        "User": 610,
        "Item": 3650,
        "Genre": 19,
        "Year": 97,
        "Director": 1423,
        "Actor": 3740,
    }
    assert neo4j["counts"]["relationships"]["RATED"] == 90274

    again = kgrank("graph", "load", "--data", data, env=neo4j_env)
    assert again.returncode == 0, again.stderr
    assert "replaced" not in again.stdout
    assert json.loads((data / "graph-load-neo4j.json").read_text())["counts"] == neo4j["counts"]


def test_paths_are_identical_on_real_data(loaded: tuple[Path, str], neo4j_settings: Settings) -> None:
    data, name = loaded
    dataset = ProcessedDataset.load(data)
    rng = random.Random(11)
    items = [item.id for item in dataset.items]
    test_rows = dataset.interactions[dataset.interactions["split"] == "test"]
    requests = []
    for row in test_rows.sample(40, random_state=3).itertuples():
        target = dataset.item(row.item).id
        others = rng.sample([i for i in items if i != target], 19)
        requests.append(
            PathRequest(
                user_id=dataset.user_id(row.user),
                candidates=tuple(rng.sample([target, *others], 20)),
                cutoff=HistoryCutoff(timestamp=row.timestamp, item_idx=row.item),
            )
        )
    config = PathConfig()
    driver = open_driver(neo4j_settings)
    graph = EmbeddedGraph(data / "graph.sqlite")
    try:
        from_neo4j = Neo4jPathSource(
            driver, database=neo4j_settings.neo4j_database, dataset=name, schema=dataset.schema, config=config
        ).fetch(requests)
        from_embedded = EmbeddedPathSource(graph, dataset=name, schema=dataset.schema, config=config).fetch(requests)
    finally:
        driver.close()
        graph.close()
    assert from_neo4j == from_embedded
    assert sum(len(r.paths) for r in from_neo4j) > 40 * 100
    # The cutoff keeps the held-out test event (and nothing before it) out of the history.
    events = dataset.interactions.groupby("user").size()
    for row, result in zip(test_rows.sample(40, random_state=3).itertuples(), from_neo4j, strict=True):
        assert len(result.history) == min(20, events[row.user] - 1)
        assert dataset.item(row.item).id not in {h.item_id for h in result.history}


def test_a_load_killed_midway_then_rerun_equals_a_clean_load(
    loaded: tuple[Path, str], neo4j_env: dict[str, str], neo4j_settings: Settings
) -> None:
    from services.graph_loader.neo4j_writer import Neo4jGraphWriter

    data, name = loaded
    clean = json.loads((data / "graph-load-embedded.json").read_text())["counts"]
    driver = open_driver(neo4j_settings)
    try:
        writer = Neo4jGraphWriter(driver, database=neo4j_settings.neo4j_database)
        writer.drop(name)
        kill_when(  # while writing ratings
            ["graph", "load", "--data", data, "--batch-size", "500"],
            lambda: writer.counts(name).relationships.get("RATED", 0) > 0,
            env=neo4j_env,
            timeout=120,
        )
        partial = writer.counts(name)
        records, _, _ = driver.execute_query(
            "MATCH (d:KgrankDataset {name: $name}) RETURN d.status AS status",
            name=name,
            database_=neo4j_settings.neo4j_database,
        )
        assert records[0]["status"] == "loading"  # nothing half-written looks complete
        assert partial.relationships.get("RATED", 0) < clean["relationships"]["RATED"]

        rerun = kgrank("graph", "load", "--data", data, env=neo4j_env)
        assert rerun.returncode == 0, rerun.stderr
        assert writer.counts(name).model_dump() == clean  # nothing lost, nothing duplicated
    finally:
        driver.close()


def test_an_embedded_load_killed_midway_is_refused_then_a_rerun_equals_a_clean_load(
    loaded: tuple[Path, str], tmp_path: Path
) -> None:
    import sqlite3

    data, name = loaded
    clean = json.loads((data / "graph-load-embedded.json").read_text())["counts"]
    graph_file = tmp_path / "graph.sqlite"
    load = ["graph", "load", "--data", data, "--embedded", graph_file, "--report", tmp_path / "report.json"]

    def rated() -> int:
        try:
            with sqlite3.connect(f"file:{graph_file}?mode=ro", uri=True, timeout=5) as db:
                return db.execute("SELECT count(*) FROM rels WHERE type = 'RATED'").fetchone()[0]
        except sqlite3.OperationalError:  # not created yet
            return 0

    kill_when([*load, "--batch-size", "100"], lambda: rated() > 0, timeout=120)  # while writing ratings
    assert 0 < rated() < clean["relationships"]["RATED"]

    refused = kgrank("graph", "paths", "--data", data, "--embedded", graph_file, "--user", "1", "--candidates", "1")
    assert refused.returncode == 2
    assert f"holds no complete load of {name} (loading)" in refused.stderr  # nothing half-written looks complete

    rerun = kgrank(*load)
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads((tmp_path / "report.json").read_text())["counts"] == clean  # nothing lost or duplicated
