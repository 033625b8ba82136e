"""The living catalogue: items created or updated through the API (PUT /items/{id}) after `data prepare`.

Each is kept as one catalogue entry (its latest definition: title and attribute names per label), beside
the graph's Item node and attribute relationships written from it, in one transaction. Loads never wipe
the entries and write them with the dataset's own items, so a reload keeps every live item; events of
live items are replayed after them. A live item has no embedding in the trained retriever: it is ranked
and explained through its graph paths (cold start through the knowledge graph).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from services.core.atomic import atomic_write_text
from services.core.errors import DatasetFormatError
from services.graph_loader.records import GraphPart


class CatalogItem(BaseModel):
    model_config = ConfigDict(frozen=True)

    item_id: str
    title: str
    attributes: dict[str, list[str]]  # attribute label (from the dataset's schema) -> names
    recorded_at: float  # server time, unix seconds


def with_catalog(parts: list[GraphPart], catalog: list[CatalogItem]) -> list[GraphPart]:
    """The dataset's graph rows plus the live items' (item rows, and attribute rows per label)."""
    if not catalog:
        return parts
    extended = []
    for part in parts:
        rows: list[dict[str, Any]] = part.rows
        if part.kind == "items":
            rows = rows + [{"id": c.item_id, "idx": None, "title": c.title, "properties": {}} for c in catalog]
        elif part.kind == "attributes" and part.label:
            rows = rows + [{"item": c.item_id, "name": n} for c in catalog for n in c.attributes.get(part.label, [])]
        extended.append(GraphPart(part.kind, rows, label=part.label, rel_type=part.rel_type))
    return extended


def write_catalog_jsonl(catalog: list[CatalogItem], path: Path) -> int:
    """The living catalogue as JSON lines (one item each, by id), written atomically."""
    lines = [item.model_dump_json() for item in sorted(catalog, key=lambda item: item.item_id)]
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return len(lines)


def read_catalog_jsonl(path: Path) -> list[CatalogItem]:
    """An exported catalogue back; DatasetFormatError naming the line when one is not an item."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise DatasetFormatError(f"cannot read {path}: {e.strerror or e}") from e
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                items.append(CatalogItem.model_validate(json.loads(line)))
            except (ValueError, ValidationError) as e:
                raise DatasetFormatError(f"{path}, line {number}: not a catalogue item ({e})") from e
    return items
