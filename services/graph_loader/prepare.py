"""`kgrank data prepare` as a function: read (downloading if asked) → preprocess → save atomically."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pandas as pd

from services.core.atomic import check_replaceable
from services.core.errors import DatasetFormatError, DatasetNotFoundError
from services.graph_loader.catalog import read_catalog_jsonl
from services.graph_loader.dataset import DATASET_MARKERS, ProcessedDataset
from services.graph_loader.download import fetch_dataset
from services.graph_loader.events import read_events_csv
from services.graph_loader.preprocess import preprocess
from services.graph_loader.raw import RawDataset, RawItem
from services.graph_loader.readers import reader_for

logger = logging.getLogger(__name__)


def prepare_dataset(
    kind: str,
    raw_dir: Path,
    out_dir: Path,
    *,
    name: str | None = None,
    category: str | None = None,
    mapping: Path | None = None,
    min_interactions: int = 5,
    download: bool = False,
    download_url: str | None = None,
    events: Path | None = None,
    catalog: Path | None = None,
) -> ProcessedDataset:
    """`catalog`: items exported by `kgrank graph catalog`, added to the raw items (a raw item of the same id
    wins). `events`: a live event log exported by `kgrank graph events`, added to the raw interactions (its
    events of items the raw data lacks are left out, and logged)."""
    check_replaceable(out_dir, markers=DATASET_MARKERS)  # before minutes of reading, not after
    reader = reader_for(kind, category=category, mapping=mapping)
    try:
        raw = reader.read(raw_dir, name=name)
    except DatasetNotFoundError:
        if not download:
            raise
        logger.info("raw %s files missing in %s: downloading them", kind, raw_dir)
        fetch_dataset(kind, raw_dir, category=category, url=download_url)
        raw = reader.read(raw_dir, name=name)
    if catalog is not None:
        raw = with_live_items(raw, catalog)
    if events is not None:
        raw = with_live_events(raw, events)
    processed = preprocess(raw, min_interactions=min_interactions)
    processed.save(out_dir)
    return processed


def with_live_items(raw: RawDataset, path: Path) -> RawDataset:
    unknown = {label for item in read_catalog_jsonl(path) for label in item.attributes} - set(raw.schema.attributes)
    if unknown:
        raise DatasetFormatError(f"{path}: attribute labels {sorted(unknown)} are not in {raw.name}'s schema")
    added = {
        item.item_id: RawItem(title=item.title, attributes=item.attributes)
        for item in read_catalog_jsonl(path)
        if item.item_id not in raw.items
    }
    return replace(raw, items=raw.items | added, sources=[*raw.sources, path])


def with_live_events(raw: RawDataset, path: Path) -> RawDataset:
    log = read_events_csv(path)
    kept = [event for event in log if event.item_id in raw.items]
    if len(kept) < len(log):
        logger.warning(
            "%s: %d of %d live events name items the raw data lacks; left out", path, len(log) - len(kept), len(log)
        )
    live = pd.DataFrame(
        {
            "user": [event.user_id for event in kept],
            "item": [event.item_id for event in kept],
            "rating": [float("nan") if event.rating is None else event.rating for event in kept],
            "timestamp": [event.timestamp for event in kept],
        }
    ).astype({"rating": "float64", "timestamp": "int64"})
    interactions = pd.concat([raw.interactions, live], ignore_index=True)
    return replace(raw, interactions=interactions, sources=[*raw.sources, path])
