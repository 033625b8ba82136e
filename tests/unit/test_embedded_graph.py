from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services.graph_loader.dataset import ProcessedDataset
from services.graph_loader.embedded import EmbeddedGraph
from services.graph_loader.loader import load_graph
from services.graph_loader.prepare import prepare_dataset
from services.ranker.context import RANKING_PATHS
from services.ranker.paths import PathConfig
from services.ranker.paths.embedded_source import EmbeddedPathSource
from services.ranker.serving.graph import EmbeddedServingGraph
from tests.contracts.graph_writer import GraphWriterContract, ServingGraphFactory
from tests.contracts.path_source import MakeSource, PathSourceContract
from tests.fixtures.toy import toy_dataset


class TestEmbeddedWriter(GraphWriterContract):
    @pytest.fixture
    def dataset(self, ml_raw: Path, tmp_path: Path) -> ProcessedDataset:
        return prepare_dataset("ml-latest-small", ml_raw, tmp_path / "data")

    @pytest.fixture
    def writer(self, tmp_path: Path) -> Iterator[EmbeddedGraph]:
        graph = EmbeddedGraph(tmp_path / "graph.sqlite")
        yield graph
        graph.close()

    @pytest.fixture
    def serving_graph(self, writer: EmbeddedGraph) -> ServingGraphFactory:
        return lambda dataset: EmbeddedServingGraph(writer.path, dataset, RANKING_PATHS)

    def test_status_and_persistence(self, writer: EmbeddedGraph, dataset: ProcessedDataset) -> None:
        assert writer.status(dataset.name) is None
        report = load_graph(dataset, writer, target="test", progress=False)
        writer.close()
        reopened = EmbeddedGraph(writer.path)
        assert reopened.status(dataset.name) == {
            "data_hash": dataset.manifest.data_hash,
            "split": "all",
            "status": "complete",
            "completed_at": reopened.status(dataset.name)["completed_at"],  # type: ignore[index]
        }
        assert reopened.counts(dataset.name) == report.counts
        reopened.close()

    def test_two_datasets_share_a_file(self, writer: EmbeddedGraph, tmp_path: Path) -> None:
        first, _ = toy_dataset(tmp_path / "a", name="toy-a")
        second, _ = toy_dataset(tmp_path / "b", name="toy-b")
        load_graph(first, writer, target="test", progress=False)
        load_graph(second, writer, target="test", progress=False, split="train")
        assert writer.counts("toy-a").relationships["RATED"] == 6
        assert writer.counts("toy-b").relationships["RATED"] == 2  # train: alice's first two (bob has 2 events)

    def test_not_a_graph_file(self, tmp_path: Path) -> None:
        from services.core.errors import GraphError

        bad = tmp_path / "bad.sqlite"
        bad.write_bytes(b"definitely not sqlite" * 100)
        with pytest.raises(GraphError, match="not a usable embedded graph file"):
            EmbeddedGraph(bad)


class TestEmbeddedPaths(PathSourceContract):
    @pytest.fixture
    def make_source(self, tmp_path: Path) -> Iterator[MakeSource]:
        dataset, _ = toy_dataset(tmp_path)
        graph = EmbeddedGraph(tmp_path / "graph.sqlite")
        load_graph(dataset, graph, target="test", progress=False)
        yield lambda config: EmbeddedPathSource(graph, dataset=dataset.name, schema=dataset.schema, config=config)
        graph.close()


def test_path_config_bounds() -> None:
    from pydantic import ValidationError

    assert (PathConfig(max_hops=3).left_hops, PathConfig(max_hops=3).right_hops) == (2, 1)
    with pytest.raises(ValidationError):
        PathConfig(max_hops=4)
