"""What every reader returns: raw interactions and item metadata, before any filtering."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from services.graph_loader.schema import GraphSchema

INTERACTION_COLUMNS = ("user", "item", "rating", "timestamp")


@dataclass
class RawItem:
    title: str | None
    attributes: dict[str, list[str]] = field(default_factory=dict)
    links: dict[str, list[str]] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)


@dataclass
class RawDataset:
    """`interactions` has columns user (str), item (str), rating (float, NaN if absent), timestamp (int64)."""

    name: str
    kind: str
    interactions: pd.DataFrame
    items: dict[str, RawItem]
    schema: GraphSchema
    sources: list[Path]


def clean_values(values: list[str]) -> list[str]:
    """Strip, drop empties and duplicates, keep the given order (e.g. actors' billing order)."""
    seen: dict[str, None] = {}
    for value in values:
        value = " ".join(str(value).split())
        if value:
            seen.setdefault(value, None)
    return list(seen)
