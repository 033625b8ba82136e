"""A served model for the API tests: a small generated dataset, its embedded graph, and tiny trained models.

Training takes well under a minute; quality is not what these tests check.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from services.api.app import build_service, create_app
from services.api.local import free_port
from services.core.settings import Settings
from services.graph_loader.dataset import ProcessedDataset
from services.graph_loader.embedded import EmbeddedGraph
from services.graph_loader.loader import load_graph
from services.graph_loader.neo4j_writer import Neo4jGraphWriter
from services.graph_loader.prepare import prepare_dataset
from services.graph_loader.synthetic import generate, write_ml_latest_small
from services.ranker.context import RANKING_PATHS
from services.ranker.llm.metadata import RankerMetadata
from services.ranker.llm.tiny_config import TinyLlamaConfig
from services.ranker.paths.embedded_source import EmbeddedPathSource
from tests.unit.test_cli import cli_environment
from training.bundle import Bundle, BundleConfig, train_bundle
from training.config import PreferenceConfig, RankerConfig, RetrieverConfig

TINY_LLM = TinyLlamaConfig(vocab_size=700, hidden_size=32, layers=1, heads=2, max_positions=1024)


@dataclass(frozen=True)
class Served:
    dataset: ProcessedDataset
    data_dir: Path
    bundle: Bundle

    @property
    def fusion_weight(self) -> float:
        """The retriever weight the bundle's ranker chose on val (0: it ranks alone)."""
        choice = RankerMetadata.load(self.bundle.ranker).fusion
        return 0.0 if choice is None else choice.weight

    def settings(self, **overrides: object) -> Settings:
        base: dict[str, object] = {
            "dataset_dir": self.data_dir,
            "model_dir": self.bundle.ranker,
            "retriever_dir": self.bundle.retriever,
            "neo4j_uri": None,
        }
        return Settings(**(base | overrides))  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Served:
    work = tmp_path_factory.mktemp("served")
    raw = write_ml_latest_small(generate(users=60, movies=100, seed=5), work / "raw")
    # A name of its own, so the Neo4j tests can load it next to other tests' datasets.
    dataset = prepare_dataset("ml-latest-small", raw, work / "data", name=f"api-{uuid.uuid4().hex[:10]}")
    graph = EmbeddedGraph(work / "data" / "graph.sqlite")
    load_graph(dataset, graph, target="embedded", progress=False)
    bundle = train_bundle(
        dataset,
        EmbeddedPathSource(graph, dataset=dataset.name, schema=dataset.schema, config=RANKING_PATHS),
        BundleConfig(
            retriever=RetrieverConfig(model="pop"),
            preference=PreferenceConfig(max_epochs=3),
            ranker=RankerConfig(epochs=1, eval_every=20, budget_tokens=600, tiny=TINY_LLM),
            train_examples=160,
        ),
        work / "models",
        cache_dir=work / "data" / "cache",
        progress=False,
    )
    graph.close()
    return Served(dataset, work / "data", bundle)


@pytest.fixture(scope="session")
def neo4j_served(served: Served, neo4j_driver, neo4j_settings: Settings) -> Iterator[dict[str, object]]:
    """The served dataset loaded into the real Neo4j; settings overrides that point the API at it."""
    writer = Neo4jGraphWriter(neo4j_driver, database=neo4j_settings.neo4j_database)
    load_graph(served.dataset, writer, target="neo4j", progress=False)
    yield {"neo4j_uri": neo4j_settings.neo4j_uri, "neo4j_password": neo4j_settings.neo4j_password}
    writer.drop(served.dataset.name)


ClientFactory = Callable[..., TestClient]


@pytest.fixture
def client_for(served: Served) -> Iterator[ClientFactory]:
    """Start an app on the served model with settings overrides; every client is closed after the test."""
    clients: list[TestClient] = []

    def start(**overrides: object) -> TestClient:
        settings = served.settings(**overrides)
        client = TestClient(create_app(settings, service=build_service(settings)))
        client.__enter__()
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)


def seen_items(served: Served, user_idx: int) -> set[str]:
    """The ids of the items the user interacted with in the dataset (every split)."""
    frame = served.dataset.interactions
    return {served.dataset.item(int(i)).id for i in frame.loc[frame["user"] == user_idx, "item"]}


def candidates_for(served: Served, user_idx: int, count: int = 10) -> list[str]:
    """`count` item ids the user has not interacted with, in catalogue order."""
    seen = seen_items(served, user_idx)
    return [item.id for item in served.dataset.items if item.id not in seen][:count]


def wait_healthy(server: subprocess.Popen[bytes], url: str, log: Path, *, timeout_s: float = 120) -> None:
    """Until `server` answers /healthz; fails with its log if it exits or stays silent for `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        assert server.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        try:
            if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)


@contextmanager
def serve_process(served: Served, log: Path, **settings: str) -> Iterator[str]:
    """`kgrank serve` as a process of its own on the served model (KGRANK_* from `settings`); yields its URL."""
    port = free_port()
    env = cli_environment(
        {
            "KGRANK_DATASET_DIR": str(served.data_dir),
            "KGRANK_MODEL_DIR": str(served.bundle.ranker),
            "KGRANK_RETRIEVER_DIR": str(served.bundle.retriever),
            **{f"KGRANK_{name.upper()}": value for name, value in settings.items()},
        }
    )
    with log.open("w") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "kgrank", "serve", "--port", str(port)], stdout=sink, stderr=sink, env=env
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_healthy(server, url, log)
            yield url
        finally:
            server.terminate()
            server.wait(timeout=30)


def new_item_for(served: Served, user_idx: int) -> tuple[str, dict[str, object]]:
    """An id and PUT /items body for a brand-new item sharing a genre with the user's newest dataset item."""
    frame = served.dataset.interactions
    newest = int(frame.loc[frame["user"] == user_idx].sort_values("timestamp")["item"].iloc[-1])
    genre = served.dataset.item(newest).attributes["Genre"][0]
    return f"new-{uuid.uuid4().hex[:8]}", {"title": "A Brand New Film (2026)", "attributes": {"Genre": [genre]}}
