"""Load a processed dataset into a graph (Neo4j or embedded) through one GraphWriter interface."""

from __future__ import annotations

import time
from collections.abc import Iterator
from importlib.metadata import version
from typing import Any, Protocol

from pydantic import BaseModel, Field
from tqdm import tqdm

from services.core.errors import GraphError
from services.graph_loader.catalog import CatalogItem, with_catalog
from services.graph_loader.dataset import ProcessedDataset
from services.graph_loader.events import LiveEvent
from services.graph_loader.records import (
    GraphCounts,
    GraphPart,
    GraphSplit,
    LoadMeta,
    expected_counts,
    graph_parts,
    live_parts,
)
from services.graph_loader.schema import GraphSchema


class GraphWriter(Protocol):
    def begin_load(self, meta: LoadMeta, schema: GraphSchema) -> bool:
        """Create constraints, wipe the dataset if the graph holds a different load (never its live event
        log); True if it wiped."""
        ...

    def write(self, dataset: str, part: GraphPart, rows: list[dict[str, Any]]) -> None:
        """MERGE one batch of rows of `part` (idempotent)."""
        ...

    def complete_load(self, meta: LoadMeta) -> None: ...

    def drop(self, dataset: str) -> None:
        """Remove every node, relationship, the live event log and the load record of `dataset`."""
        ...

    def events(self, dataset: str) -> list[LiveEvent]:
        """The live event log of `dataset`, in event order."""
        ...

    def catalog(self, dataset: str) -> list[CatalogItem]:
        """The living catalogue of `dataset` (items created through the API)."""
        ...

    def counts(self, dataset: str) -> GraphCounts: ...


class LoadReport(BaseModel):
    dataset: str
    split: GraphSplit
    data_hash: str
    target: str
    rows: int
    batch_size: int
    wiped_previous: bool
    live_items: int = Field(description="living-catalogue items (PUT /items) written with the dataset's")
    live_events: int = Field(description="live events (POST /interactions) replayed onto the load")
    live_events_skipped: int = Field(description="live events kept in the log whose item this dataset lacks")
    seconds: float
    counts: GraphCounts


def load_graph(
    dataset: ProcessedDataset,
    writer: GraphWriter,
    *,
    target: str,
    split: GraphSplit = "all",
    batch_size: int = 5000,
    progress: bool = True,
) -> LoadReport:
    """Write every part in batches, replay the live event log over them, then check the graph's counts
    against the rows and the events: nothing lost, live interactions included."""
    started = time.perf_counter()
    dataset_items = {item.id for item in dataset.items}
    catalog = [entry for entry in writer.catalog(dataset.name) if entry.item_id not in dataset_items]
    parts = with_catalog(graph_parts(dataset, split), catalog)
    meta = load_meta(dataset, split)
    wiped = writer.begin_load(meta, dataset.schema)
    total = sum(len(part.rows) for part in parts)
    with tqdm(total=total, unit=" rows", desc=f"loading {dataset.name} into {target}", disable=not progress) as bar:
        for part in parts:
            bar.set_postfix_str(part.description)
            for batch in batches(part.rows, batch_size):
                writer.write(dataset.name, part, batch)
                bar.update(len(batch))
    items = dataset_items | {entry.item_id for entry in catalog}
    log = writer.events(dataset.name)
    live = [event for event in log if event.item_id in items]
    for part in live_parts(live):
        for batch in batches(part.rows, batch_size):
            writer.write(dataset.name, part, batch)
    counts = verified_counts(writer, dataset.name, expected_counts(parts, live), target=target, split=split)
    writer.complete_load(meta)
    return LoadReport(
        dataset=dataset.name,
        split=split,
        data_hash=meta.data_hash,
        target=target,
        rows=total,
        batch_size=batch_size,
        wiped_previous=wiped,
        live_items=len(catalog),
        live_events=len(live),
        live_events_skipped=len(log) - len(live),
        seconds=round(time.perf_counter() - started, 3),
        counts=counts,
    )


def load_meta(dataset: ProcessedDataset, split: GraphSplit) -> LoadMeta:
    return LoadMeta(
        dataset=dataset.name, data_hash=dataset.manifest.data_hash, split=split, kgrank_version=version("kgrank")
    )


def verified_counts(
    writer: GraphWriter, dataset: str, expected: GraphCounts, *, target: str, split: GraphSplit
) -> GraphCounts:
    """The graph's counts of `dataset`, which must be `expected` (what the rows written make): nothing lost."""
    counts = writer.counts(dataset)
    if counts != expected:
        raise GraphError(
            f"{target} holds different counts than {dataset} ({split}) after loading: "
            f"expected {expected.model_dump()}, found {counts.model_dump()}",
            dataset=dataset,
        )
    return counts


def batches(rows: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]
