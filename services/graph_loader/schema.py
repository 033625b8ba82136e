"""The knowledge-graph schema: which attribute labels and item–item link types a dataset uses.

Labels and relationship types cannot be Cypher parameters, so this schema is the allow-list that
decides which identifiers may ever be placed into a statement (see services.core.cypher).
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

USER_LABEL = "User"
ITEM_LABEL = "Item"
RATED = "RATED"
DATASET_LABEL = "KgrankDataset"
EVENT_LABEL = "KgrankEvent"  # the live event log (services/graph_loader/events.py)
CATALOG_LABEL = "KgrankCatalogItem"  # the living catalogue (services/graph_loader/catalog.py)
BOOKKEEPING_LABELS = (DATASET_LABEL, EVENT_LABEL, CATALOG_LABEL)  # not part of the knowledge graph's counts

#: The attribute labels of docs/design.md and the relationship that links an Item to each.
STANDARD_ATTRIBUTES: dict[str, str] = {
    "Genre": "HAS_GENRE",
    "Year": "RELEASED_IN",
    "Director": "DIRECTED_BY",
    "Actor": "HAS_ACTOR",
    "Brand": "HAS_BRAND",
    "Category": "IN_CATEGORY",
}
STANDARD_LINKS: tuple[str, ...] = ("ALSO_BOUGHT", "ALSO_VIEWED", "BOUGHT_TOGETHER")

_LABEL = re.compile(r"^[A-Z][A-Za-z0-9]{0,39}$")
_REL_TYPE = re.compile(r"^[A-Z][A-Z0-9_]{0,39}$")
_RESERVED = {USER_LABEL, ITEM_LABEL, RATED, DATASET_LABEL, EVENT_LABEL, CATALOG_LABEL}


class GraphSchema(BaseModel):
    """Attribute label -> relationship type (Item -[type]-> Attribute), plus Item -> Item link types."""

    model_config = ConfigDict(frozen=True)

    attributes: dict[str, str]
    links: tuple[str, ...] = ()

    @field_validator("attributes")
    @classmethod
    def _check_attributes(cls, attributes: dict[str, str]) -> dict[str, str]:
        for label, rel_type in attributes.items():
            if not _LABEL.match(label) or label in _RESERVED:
                raise ValueError(f"attribute label {label!r} must be PascalCase and not one of {_RESERVED}")
            if not _REL_TYPE.match(rel_type) or rel_type in _RESERVED:
                raise ValueError(f"relationship type {rel_type!r} must be UPPER_SNAKE_CASE, not RATED")
        return attributes

    @field_validator("links")
    @classmethod
    def _check_links(cls, links: tuple[str, ...]) -> tuple[str, ...]:
        for rel_type in links:
            if not _REL_TYPE.match(rel_type) or rel_type in _RESERVED:
                raise ValueError(f"link type {rel_type!r} must be UPPER_SNAKE_CASE, not RATED")
        return links

    @model_validator(mode="after")
    def _types_are_unique(self) -> GraphSchema:
        types = [*self.attributes.values(), *self.links]
        if len(set(types)) != len(types):
            raise ValueError(f"relationship types must be unique, got {types}")
        return self

    @property
    def path_types(self) -> tuple[str, ...]:
        """Relationship types a relation path may use, every type except RATED, in tie-break order."""
        return (*self.attributes.values(), *self.links)

    @property
    def node_labels(self) -> tuple[str, ...]:
        return (USER_LABEL, ITEM_LABEL, *self.attributes)


def standard_schema(labels: list[str], links: tuple[str, ...] = ()) -> GraphSchema:
    return GraphSchema(attributes={label: STANDARD_ATTRIBUTES[label] for label in labels}, links=links)
