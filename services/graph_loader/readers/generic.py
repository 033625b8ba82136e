"""Bring-your-own data: an interactions CSV, an items JSONL file and a declarative mapping.

`mapping.json` (in the raw folder, or passed with --mapping) says which columns and fields to use and
which item fields become attribute nodes (label + relationship type) or item–item links:

    {
      "name": "my-shop",
      "interactions": {"file": "interactions.csv", "user": "user_id", "item": "item_id",
                       "rating": "rating", "timestamp": "ts"},
      "items": {"file": "items.jsonl", "id": "item_id", "title": "name", "properties": ["url"]},
      "attributes": [{"field": "genres", "label": "Genre", "relationship": "HAS_GENRE"}],
      "links": [{"field": "similar", "relationship": "SIMILAR_TO"}]
    }
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from services.core.errors import DatasetFormatError
from services.graph_loader.raw import RawDataset, RawItem, clean_values
from services.graph_loader.readers.files import interactions_frame, read_csv, require_file
from services.graph_loader.schema import GraphSchema


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InteractionsMapping(_Strict):
    file: str = "interactions.csv"
    user: str = "user_id"
    item: str = "item_id"
    rating: str | None = "rating"
    timestamp: str = "timestamp"


# Item node properties kgrank sets itself; a mapping cannot overwrite them.
RESERVED_PROPERTIES = frozenset({"dataset", "id", "idx", "title"})


class ItemsMapping(_Strict):
    file: str = "items.jsonl"
    id: str = "item_id"
    title: str = "title"
    properties: list[str] = Field(default_factory=list)

    @field_validator("properties")
    @classmethod
    def _not_reserved(cls, properties: list[str]) -> list[str]:
        clashes = sorted(RESERVED_PROPERTIES.intersection(properties))
        if clashes:
            raise ValueError(f"item properties {clashes} are reserved")
        return properties


class AttributeMapping(_Strict):
    field: str
    label: str
    relationship: str


class LinkMapping(_Strict):
    field: str
    relationship: str


class GenericMapping(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    interactions: InteractionsMapping = InteractionsMapping()
    items: ItemsMapping = ItemsMapping()
    attributes: list[AttributeMapping] = Field(default_factory=list)
    links: list[LinkMapping] = Field(default_factory=list)

    def graph_schema(self) -> GraphSchema:
        return GraphSchema(
            attributes={a.label: a.relationship for a in self.attributes},
            links=tuple(link.relationship for link in self.links),
        )


def load_mapping(path: Path) -> GenericMapping:
    try:
        return GenericMapping.model_validate_json(path.read_bytes())
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise DatasetFormatError(f"{path}: {where}: {first['msg']}", path=str(path)) from e


class GenericReader:
    kind = "generic"

    def __init__(self, mapping: Path | None = None) -> None:
        self.mapping_path = mapping

    def read(self, raw_dir: Path, *, name: str | None = None) -> RawDataset:
        mapping_path = self.mapping_path or require_file(raw_dir, "mapping.json", what="the generic mapping")
        mapping = load_mapping(mapping_path)
        try:
            schema = mapping.graph_schema()
        except ValidationError as e:
            raise DatasetFormatError(f"{mapping_path}: {e.errors()[0]['msg']}", path=str(mapping_path)) from e
        spec = mapping.interactions
        interactions_path = require_file(raw_dir, spec.file, what=f"CSV with {spec.user},{spec.item},…")
        columns = [spec.user, spec.item, spec.timestamp] + ([spec.rating] if spec.rating else [])
        frame = read_csv(interactions_path, columns=columns)
        interactions = interactions_frame(
            frame,
            path=interactions_path,
            user=spec.user,
            item=spec.item,
            rating=spec.rating,
            timestamp=spec.timestamp,
        )
        items_path = require_file(raw_dir, mapping.items.file, what="one JSON object per line")
        items = self._items(items_path, mapping)
        return RawDataset(
            name=name or mapping.name,
            kind=self.kind,
            interactions=interactions,
            items=items,
            schema=schema,
            sources=[mapping_path, interactions_path, items_path],
        )

    @staticmethod
    def _items(path: Path, mapping: GenericMapping) -> dict[str, RawItem]:
        items: dict[str, RawItem] = {}
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as e:
            raise DatasetFormatError(f"{path}: not valid UTF-8 at byte {e.start}", path=str(path)) from e
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise DatasetFormatError(f"{path}:{number}: invalid JSON ({e.msg})", path=str(path)) from e
            if not isinstance(record, dict) or _scalar(record.get(mapping.items.id)) is None:
                raise DatasetFormatError(
                    f"{path}:{number}: expected an object with field {mapping.items.id!r}", path=str(path)
                )
            items[_scalar(record[mapping.items.id]) or ""] = RawItem(
                title=_scalar(record.get(mapping.items.title)),
                attributes={a.label: _values(record.get(a.field)) for a in mapping.attributes},
                links={link.relationship: _values(record.get(link.field)) for link in mapping.links},
                properties={key: value for key in mapping.items.properties if (value := _scalar(record.get(key)))},
            )
        return items


def _scalar(value: Any) -> str | None:
    if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
        return None
    text = " ".join(str(value).split())
    return text or None


def _values(value: Any) -> list[str]:
    """A field may hold one value or a list of values."""
    values = value if isinstance(value, list) else [value]
    return clean_values([text for v in values if (text := _scalar(v)) is not None])
