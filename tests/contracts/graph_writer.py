"""What every GraphWriter (Neo4j, embedded) must do; subclasses provide `writer` and `dataset`."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from services.graph_loader.catalog import CatalogItem
from services.graph_loader.dataset import ProcessedDataset
from services.graph_loader.events import LiveEvent, event_order
from services.graph_loader.loader import GraphWriter, load_graph
from services.graph_loader.records import expected_counts, graph_parts
from services.ranker.paths import PathRequest
from services.ranker.serving.graph import ServingGraph

ServingGraphFactory = Callable[[ProcessedDataset], ServingGraph]


class GraphWriterContract:
    def test_counts_equal_the_dataset(self, writer: GraphWriter, dataset: ProcessedDataset) -> None:
        report = load_graph(dataset, writer, target="test", progress=False)
        assert report.counts == expected_counts(graph_parts(dataset, "all"), [])
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
        assert writer.counts(dataset.name) != expected_counts(parts, [])
        report = load_graph(dataset, writer, target="test", progress=False)
        assert not report.wiped_previous
        assert report.counts == expected_counts(parts, [])

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

    # -- the live event log (subclasses also provide `serving_graph(dataset) -> ServingGraph`) -------------

    def test_live_events_survive_every_documented_load(
        self, writer: GraphWriter, dataset: ProcessedDataset, serving_graph: ServingGraphFactory
    ) -> None:
        load_graph(dataset, writer, target="test", progress=False)
        frame = dataset.interactions
        first = frame.iloc[0]
        user, item = dataset.user_id(int(first["user"])), dataset.item(int(first["item"])).id
        seen = set(frame.loc[frame["user"] == first["user"], "item"].tolist())
        other = next(i.id for i in dataset.items if i.idx not in seen)
        rerating = 1.0 if first["rating"] != 1.0 else 2.0
        events = [
            LiveEvent(
                event_id="re-rate", user_id=user, item_id=item, rating=rerating, timestamp=2_000_000_000, recorded_at=1
            ),
            # A later view without a rating: last seen moves on, the rating stays.
            LiveEvent(event_id="view", user_id=user, item_id=item, rating=None, timestamp=2_000_000_100, recorded_at=2),
            LiveEvent(
                event_id="new-user",
                user_id="live only",
                item_id=other,
                rating=4.0,
                timestamp=2_000_000_050,
                recorded_at=3,
            ),
        ]

        async def scenario() -> None:
            graph = serving_graph(dataset)
            try:
                recorded = [await graph.record(event) for event in events]
                assert [(r.created, r.user_version) for r in recorded] == [(True, 1), (True, 2), (True, 1)]
                retried = await graph.record(events[0].model_copy(update={"recorded_at": 9}))
                assert (retried.created, retried.user_version, retried.event) == (False, 2, events[0])
                for split in ("all", "train", "all"):  # a reload, a wiping reload onto another split, and back
                    report = load_graph(dataset, writer, target="test", split=split, progress=False)
                    assert (report.live_events, report.live_events_skipped) == (3, 0), split
                    state = await graph.state(user)
                    assert state.user_version == 2 and state.data_hash == dataset.manifest.data_hash
                    (latest,) = (await graph.fetch(PathRequest(user_id=user, candidates=(other,)))).history[-1:]
                    assert (latest.item_id, latest.rating, latest.timestamp) == (item, rerating, 2_000_000_100)
                    live_only = await graph.fetch(PathRequest(user_id="live only", candidates=(item,)))
                    assert live_only.known_user and [h.item_id for h in live_only.history] == [other]
                assert writer.events(dataset.name) == event_order(events)
            finally:
                await graph.close()

        asyncio.run(scenario())

    def test_concurrent_events_fold_to_the_latest(
        self, writer: GraphWriter, dataset: ProcessedDataset, serving_graph: ServingGraphFactory
    ) -> None:
        load_graph(dataset, writer, target="test", progress=False)
        item = dataset.items[0].id
        events = [
            LiveEvent(
                event_id=f"burst-{n}",
                user_id="burst",
                item_id=item,
                rating=float(n % 5 + 1) if n % 3 else None,
                timestamp=1_000 + n,
                recorded_at=n,
            )
            for n in range(50)
        ]
        random.Random(0).shuffle(events)

        async def scenario() -> None:
            graph = serving_graph(dataset)
            try:
                await asyncio.gather(*(graph.record(event) for event in events))
                assert (await graph.state("burst")).user_version == 50
                (only,) = (await graph.fetch(PathRequest(user_id="burst", candidates=(dataset.items[1].id,)))).history
                # Last seen at the newest event (49); the rating of the newest rated one (49 % 3 != 0: 49 % 5 + 1).
                assert (only.item_id, only.timestamp, only.rating) == (item, 1_049, 5.0)
            finally:
                await graph.close()

        asyncio.run(scenario())

    def test_live_items_survive_every_documented_load(
        self, writer: GraphWriter, dataset: ProcessedDataset, serving_graph: ServingGraphFactory
    ) -> None:
        load_graph(dataset, writer, target="test", progress=False)
        first = dataset.items[0]
        label = next(iter(dataset.schema.attributes))
        shared = first.attributes[label][0]
        item = CatalogItem(
            item_id="live-item",
            title="A Live Item",
            attributes={label: [shared, "A Name Only This Item Has"]},
            recorded_at=1.0,
        )
        user = dataset.user_id(1)
        event = LiveEvent(
            event_id="on-live", user_id=user, item_id=first.id, rating=None, timestamp=2**40, recorded_at=2
        )

        async def scenario() -> None:
            graph = serving_graph(dataset)
            try:
                assert await graph.put_item(item) is True
                await graph.record(event)  # the user's newest item shares an attribute with the live one
                for split in ("all", "train", "all"):
                    report = load_graph(dataset, writer, target="test", split=split, progress=False)
                    assert (report.live_items, report.live_events) == (1, 1), split
                    paths = await graph.fetch(PathRequest(user_id=user, candidates=("live-item",)))
                    assert [c.title for c in paths.candidates] == ["A Live Item"]
                    assert any(p.nodes[-1].key == "live-item" and p.nodes[1].key == shared for p in paths.paths)
                # Replacing it drops the attribute nobody else has; the graph's counts stay exact on reload.
                assert await graph.put_item(item.model_copy(update={"attributes": {label: [shared]}})) is False
                report = load_graph(dataset, writer, target="test", progress=False)
                assert report.counts.nodes[label] == len(
                    {n for i in dataset.items for n in i.attributes.get(label, [])}
                )
                assert [entry.item_id for entry in writer.catalog(dataset.name)] == ["live-item"]
            finally:
                await graph.close()

        asyncio.run(scenario())
