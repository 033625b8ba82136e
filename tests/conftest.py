"""Shared fixtures: real servers (fail in CI when absent, skip elsewhere), real and generated data."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.core.settings import Settings
from services.graph_loader.synthetic import SyntheticCatalogue, generate, write_ml_latest_small

ROOT = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# A developer's ./kgrank.toml must not change what the tests see (set but empty: no config file); the
# config tests point KGRANK_CONFIG at files of their own.
os.environ["KGRANK_CONFIG"] = ""


def unavailable(reason: str) -> None:
    """A missing server or data set fails the run in CI and skips the test elsewhere."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: required)", pytrace=False)
    pytest.skip(reason)


def neo4j_test_settings() -> Settings:
    password = os.environ.get("KGRANK_TEST_NEO4J_PASSWORD")
    password_file = ROOT / ".neo4j" / "password"
    if password is None and password_file.is_file():
        password = password_file.read_text().strip()
    return Settings(
        neo4j_uri=os.environ.get("KGRANK_TEST_NEO4J_URI", "bolt://127.0.0.1:7687"),
        neo4j_user=os.environ.get("KGRANK_TEST_NEO4J_USER", "neo4j"),
        neo4j_password=password,
    )


@pytest.fixture(scope="session")
def neo4j_settings() -> Settings:
    from services.core.errors import GraphError
    from services.graph_loader.neo4j_connection import open_driver

    settings = neo4j_test_settings()
    try:
        open_driver(settings).close()
    except GraphError as e:
        unavailable(f"Neo4j not usable at {settings.neo4j_uri}: {e.message}")
    return settings


@pytest.fixture(scope="session")
def neo4j_driver(neo4j_settings: Settings) -> Iterator[object]:
    from services.graph_loader.neo4j_connection import open_driver

    driver = open_driver(neo4j_settings)
    yield driver
    driver.close()


@pytest.fixture
def dataset_name() -> str:
    """A dataset name no other test uses, so tests share one Neo4j database without clashing."""
    return f"test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def neo4j_cleanup(neo4j_driver, neo4j_settings: Settings) -> Iterator[list[str]]:
    """Register dataset names here; they are dropped from Neo4j after the test."""
    from services.graph_loader.neo4j_writer import Neo4jGraphWriter

    names: list[str] = []
    yield names
    writer = Neo4jGraphWriter(neo4j_driver, database=neo4j_settings.neo4j_database)
    for name in names:
        writer.drop(name)


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    url = os.environ.get("KGRANK_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    try:
        redis.Redis.from_url(url, socket_timeout=2).ping()
    except redis.RedisError as e:
        unavailable(f"Redis not reachable at {url}: {e} (start it: make redis-up)")
    return url


@pytest.fixture(scope="session")
def real_ml_dir() -> Path:
    folder = Path(os.environ.get("KGRANK_REAL_DATA_DIR", ROOT.parent / "shared" / "data" / "ml-latest-small"))
    if not (folder / "ratings.csv").is_file():
        unavailable(f"real ml-latest-small not found at {folder} (set KGRANK_REAL_DATA_DIR)")
    return folder


@pytest.fixture(scope="session")
def catalogue() -> SyntheticCatalogue:
    return generate(users=40, movies=60, seed=3)


@pytest.fixture(scope="session")
def ml_raw(tmp_path_factory: pytest.TempPathFactory, catalogue: SyntheticCatalogue) -> Path:
    return write_ml_latest_small(catalogue, tmp_path_factory.mktemp("ml-latest-small"))
