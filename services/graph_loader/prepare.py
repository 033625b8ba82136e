"""`kgrank data prepare` as a function: read (downloading if asked) → preprocess → save atomically."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pandas as pd

from services.core.atomic import check_replaceable
from services.core.errors import DatasetNotFoundError
from services.graph_loader.dataset import DATASET_MARKERS, ProcessedDataset
from services.graph_loader.download import fetch_dataset
from services.graph_loader.events import read_events_csv
from services.graph_loader.preprocess import preprocess
from services.graph_loader.raw import RawDataset
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
) -> ProcessedDataset:
    """`events`: a live event log exported by `kgrank graph events`, added to the raw interactions (its
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
    if events is not None:
        raw = with_live_events(raw, events)
    processed = preprocess(raw, min_interactions=min_interactions)
    processed.save(out_dir)
    return processed


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
