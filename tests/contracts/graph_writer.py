"""What every GraphWriter (Neo4j, embedded) must do; subclasses provide `writer` and `dataset`."""

from __future__ import annotations

from services.graph_loader.dataset import ProcessedDataset
from services.graph_loader.loader import GraphWriter, load_graph
from services.graph_loader.records import expected_counts, graph_parts


class GraphWriterContract:
    def test_counts_equal_the_dataset(self, writer: GraphWriter, dataset: ProcessedDataset) -> None:
        report = load_graph(dataset, writer, target="test", progress=False)
        assert report.counts == expected_counts(graph_parts(dataset, "all"))
        assert report.counts.relationships["RATED"] == len(dataset.interactions)
        assert report.counts.nodes["User"] == len(dataset.users)
        assert report.counts.nodes["Item"] == len(dataset.items)

    def test_reload_changes_nothing(self, writer: GraphWriter, dataset: ProcessedDataset) -> None:
        first = load_graph(dataset, writer, target="test", progress=False)
        second = load_graph(dataset, writer, target="test", progress=False, batch_size=7)
        assert not second.wiped_previous
        assert second.counts == first.counts

    def test_train_split_leaves_val_and_test_out(self, writer: GraphWriter, dataset: ProcessedDataset) -> None:
        load_graph(dataset, writer, target="test", progress=False)
        report = load_graph(dataset, writer, target="test", split="train", progress=False)
        assert report.wiped_previous
        train = int((dataset.interactions["split"] == "train").sum())
        assert report.counts.relationships["RATED"] == train < len(dataset.interactions)
        assert report.counts.nodes["Item"] == len(dataset.items)

    def test_interrupted_load_is_completed_by_a_rerun(self, writer: GraphWriter, dataset: ProcessedDataset) -> None:
        parts = graph_parts(dataset, "all")
        from importlib.metadata import version

        from services.graph_loader.records import LoadMeta

        meta = LoadMeta(
            dataset=dataset.name,
            data_hash=dataset.manifest.data_hash,
            split="all",
            kgrank_version=version("kgrank"),
        )
        writer.begin_load(meta, dataset.schema)
        for part in parts[:3]:
            writer.write(dataset.name, part, part.rows[: len(part.rows) // 2])
        assert writer.counts(dataset.name) != expected_counts(parts)
        report = load_graph(dataset, writer, target="test", progress=False)
        assert not report.wiped_previous
        assert report.counts == expected_counts(parts)

    def test_drop_removes_the_dataset_only(self, writer: GraphWriter, dataset: ProcessedDataset, tmp_path) -> None:
        from tests.fixtures.toy import toy_dataset

        other, _ = toy_dataset(tmp_path, name=f"{dataset.name}-other")
        load_graph(dataset, writer, target="test", progress=False)
        kept = load_graph(other, writer, target="test", progress=False)
        try:
            writer.drop(dataset.name)
            assert writer.counts(dataset.name).nodes == {}
            assert writer.counts(dataset.name).relationships == {}
            assert writer.counts(other.name) == kept.counts
            assert not load_graph(dataset, writer, target="test", progress=False).wiped_previous
        finally:
            writer.drop(other.name)
