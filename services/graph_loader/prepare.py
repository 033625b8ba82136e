"""`kgrank data prepare` as a function: read (downloading if asked) → preprocess → save atomically."""

from __future__ import annotations

import logging
from pathlib import Path

from services.core.atomic import check_replaceable
from services.core.errors import DatasetNotFoundError
from services.graph_loader.dataset import DATASET_MARKERS, ProcessedDataset
from services.graph_loader.download import fetch_dataset
from services.graph_loader.preprocess import preprocess
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
) -> ProcessedDataset:
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
    processed = preprocess(raw, min_interactions=min_interactions)
    processed.save(out_dir)
    return processed
