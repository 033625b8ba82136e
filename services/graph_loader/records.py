"""The knowledge graph of a processed dataset as rows: one list per node kind and relationship type.

Both writers (Neo4j and embedded) load exactly these rows, which is what makes their content equal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from services.graph_loader.dataset import ProcessedDataset
from services.graph_loader.events import LiveEvent, event_order
from services.graph_loader.schema import ITEM_LABEL, RATED, USER_LABEL

GraphSplit = Literal["train", "all"]
PartKind = Literal["users", "items", "attributes", "links", "ratings"]


@dataclass(frozen=True)
class GraphPart:
    """Rows of one kind; `label` / `rel_type` name the attribute label and relationship type if they vary."""

    kind: PartKind
    rows: list[dict[str, Any]] = field(repr=False)
    label: str | None = None
    rel_type: str | None = None

    @property
    def description(self) -> str:
        return self.label or self.rel_type or self.kind


class LoadMeta(BaseModel):
    """What a graph records about the load it holds: enough to tell whether a reload must wipe first."""

    dataset: str
    data_hash: str
    split: GraphSplit
    kgrank_version: str


class GraphCounts(BaseModel):
    nodes: dict[str, int]
    relationships: dict[str, int]


def graph_parts(dataset: ProcessedDataset, split: GraphSplit) -> list[GraphPart]:
    """Nodes before relationships; every item is a node even if it only appears in val/test."""
    items = dataset.items
    parts = [
        GraphPart("users", [{"id": user_id, "idx": idx} for idx, user_id in enumerate(dataset.users, start=1)]),
        GraphPart(
            "items",
            [{"id": item.id, "idx": item.idx, "title": item.title, "properties": item.properties} for item in items],
        ),
    ]
    for label, rel_type in dataset.schema.attributes.items():
        rows = [{"item": item.id, "name": name} for item in items for name in item.attributes.get(label, [])]
        parts.append(GraphPart("attributes", rows, label=label, rel_type=rel_type))
    for rel_type in dataset.schema.links:
        rows = [{"src": item.id, "dst": target} for item in items for target in item.links.get(rel_type, [])]
        parts.append(GraphPart("links", rows, rel_type=rel_type))
    frame = dataset.interactions
    if split == "train":
        frame = frame[frame["split"] == "train"]
    parts.append(
        GraphPart(
            "ratings",
            [
                {
                    "user": dataset.user_id(user),
                    "item": dataset.item(item).id,
                    "rating": None if math.isnan(rating) else rating,
                    "ts": timestamp,
                }
                for user, item, rating, timestamp in zip(
                    frame["user"].tolist(),
                    frame["item"].tolist(),
                    frame["rating"].tolist(),
                    frame["timestamp"].tolist(),
                    strict=True,
                )
            ],
        )
    )
    return parts


def live_parts(events: list[LiveEvent]) -> list[GraphPart]:
    """The live event log as graph rows: its users (a stored idx is kept), then its events in event order."""
    users = dict.fromkeys(event.user_id for event in events)
    return [
        GraphPart("users", [{"id": user_id, "idx": None} for user_id in users]),
        GraphPart("ratings", [event.rating_row() for event in event_order(events)]),
    ]


def expected_counts(parts: list[GraphPart], live: list[LiveEvent]) -> GraphCounts:
    """Counts a complete load must produce (distinct attribute nodes; edges are unique per endpoints;
    live events add their users and user–item pairs)."""
    nodes: dict[str, int] = {}
    relationships: dict[str, int] = {}
    for part in parts:
        if part.kind == "users":
            nodes[USER_LABEL] = len({row["id"] for row in part.rows} | {event.user_id for event in live})
        elif part.kind == "items":
            nodes[ITEM_LABEL] = len(part.rows)
        elif part.kind == "attributes" and part.label and part.rel_type:
            nodes[part.label] = len({row["name"] for row in part.rows})
            relationships[part.rel_type] = len({(row["item"], row["name"]) for row in part.rows})
        elif part.kind == "links" and part.rel_type:
            relationships[part.rel_type] = len({(row["src"], row["dst"]) for row in part.rows})
        elif part.kind == "ratings":
            pairs = {(row["user"], row["item"]) for row in part.rows}
            relationships[RATED] = len(pairs | {(event.user_id, event.item_id) for event in live})
    return GraphCounts(
        nodes={k: v for k, v in nodes.items() if v},
        relationships={k: v for k, v in relationships.items() if v},
    )
