"""Dataset readers. Each turns upstream files into a RawDataset; `reader_for` picks one by kind."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from services.core.errors import ConfigError
from services.graph_loader.raw import RawDataset
from services.graph_loader.readers.amazon import AmazonReader
from services.graph_loader.readers.generic import GenericReader
from services.graph_loader.readers.movielens import MovieLens100KReader, MovieLensLatestReader

DATASET_KINDS = ("ml-latest-small", "ml-100k", "amazon", "generic")


class DatasetReader(Protocol):
    kind: str

    def read(self, raw_dir: Path, *, name: str | None = None) -> RawDataset: ...


def reader_for(kind: str, *, category: str | None = None, mapping: Path | None = None) -> DatasetReader:
    if kind == "ml-latest-small":
        return MovieLensLatestReader()
    if kind == "ml-100k":
        return MovieLens100KReader()
    if kind == "amazon":
        return AmazonReader(category=category)
    if kind == "generic":
        return GenericReader(mapping=mapping)
    raise ConfigError(f"unknown dataset kind {kind!r}; choose one of {', '.join(DATASET_KINDS)}")
