"""docs/method.md §1: title filter → iterative k-core → sorted id maps → (timestamp, item) order → split.

The split is leave-one-out: per user the last event is test, the one before it val, the rest train.
"""

from __future__ import annotations

import logging
from importlib.metadata import version

import numpy as np
import pandas as pd

from services.core.errors import DatasetFormatError, EmptyDatasetError
from services.core.ids import ID_RULE, id_problem
from services.graph_loader.dataset import (
    SPLITS,
    DatasetStats,
    ItemRecord,
    Manifest,
    ProcessedDataset,
    file_digest,
)
from services.graph_loader.raw import RawDataset

logger = logging.getLogger(__name__)


def preprocess(raw: RawDataset, *, min_interactions: int = 5) -> ProcessedDataset:
    frame = raw.interactions
    raw_counts = (frame["user"].nunique(), frame["item"].nunique(), len(frame))

    # A user who interacted twice with an item keeps the first event: the sequence records discovery,
    # and the graph has one RATED edge per (user, item).
    frame = frame.sort_values("timestamp", kind="stable").drop_duplicates(["user", "item"], keep="first")
    dropped_duplicates = raw_counts[2] - len(frame)

    titled = {item_id for item_id, item in raw.items.items() if item.title}
    has_title = frame["item"].isin(titled)
    dropped_untitled = int((~has_title).sum())
    frame = frame[has_title]

    frame, rounds = k_core(frame, min_interactions)
    if frame.empty:
        raise EmptyDatasetError(
            f"{raw.name}: no interactions left after the title filter and the {min_interactions}-core filter "
            f"(raw: {raw_counts[0]} users, {raw_counts[1]} items, {raw_counts[2]} interactions)"
        )

    users = sorted_ids(frame["user"].unique())
    item_ids = sorted_ids(frame["item"].unique())
    _check_ids(raw.name, "user", users)
    _check_ids(raw.name, "item", item_ids)
    user_idx = {raw_id: idx for idx, raw_id in enumerate(users, start=1)}
    item_idx = {raw_id: idx for idx, raw_id in enumerate(item_ids, start=1)}
    ordered = pd.DataFrame(
        {
            "user": frame["user"].map(user_idx).to_numpy(np.int64),
            "item": frame["item"].map(item_idx).to_numpy(np.int64),
            "rating": frame["rating"].to_numpy(np.float64),
            "timestamp": frame["timestamp"].to_numpy(np.int64),
        }
    ).sort_values(["user", "timestamp", "item"], kind="stable", ignore_index=True)
    ordered["split"] = leave_one_out(ordered["user"])

    items = [_item_record(raw, raw_id, idx, item_idx) for raw_id, idx in item_idx.items()]
    stats = _stats(raw, ordered, items, raw_counts, dropped_duplicates, dropped_untitled, rounds)
    manifest = Manifest(
        name=raw.name,
        kind=raw.kind,
        data_hash="",
        min_interactions=min_interactions,
        kgrank_version=version("kgrank"),
        sources=[file_digest(path) for path in raw.sources],
    )
    return ProcessedDataset(
        manifest=manifest, schema=raw.schema, users=users, items=items, interactions=ordered, stats=stats
    )


def _check_ids(dataset: str, kind: str, ids: list[str]) -> None:
    """Every id the graph stores must be one the API accepts (services/core/ids.py)."""
    for value in ids:
        problem = id_problem(str(value))
        if problem is not None:
            raise DatasetFormatError(f"{dataset}: the {kind} id {str(value)[:40]!r} {problem}; ids are {ID_RULE}")


def k_core(frame: pd.DataFrame, k: int) -> tuple[pd.DataFrame, int]:
    """Drop users and items with fewer than k interactions, repeatedly, until both conditions hold."""
    rounds = 0
    while True:
        item_counts = frame.groupby("item")["user"].transform("size")
        user_counts = frame.groupby("user")["item"].transform("size")
        keep = (item_counts >= k) & (user_counts >= k)
        if keep.all():
            return frame, rounds
        frame = frame[keep]
        rounds += 1


def sorted_ids(ids: np.ndarray) -> list[str]:
    """Numeric order when every id is a decimal integer (MovieLens), else string order (Amazon ASINs)."""
    values = [str(v) for v in ids]
    if all(v.isdecimal() for v in values):
        return sorted(values, key=lambda v: (int(v), v))
    return sorted(values)


def leave_one_out(users: pd.Series) -> np.ndarray:
    """Per user (rows already in sequence order): last = test, second to last = val, the rest = train."""
    from_end = users.groupby(users).cumcount(ascending=False).to_numpy()
    return np.select([from_end == 0, from_end == 1], [SPLITS[2], SPLITS[1]], default=SPLITS[0])


def _item_record(raw: RawDataset, raw_id: str, idx: int, catalogue: dict[str, int]) -> ItemRecord:
    item = raw.items[raw_id]
    return ItemRecord(
        idx=idx,
        id=raw_id,
        title=item.title or "",
        attributes={label: values for label, values in item.attributes.items() if values},
        links={
            rel: kept
            for rel, targets in item.links.items()
            if (kept := [t for t in targets if t in catalogue and t != raw_id])
        },
        properties=item.properties,
    )


def _stats(
    raw: RawDataset,
    ordered: pd.DataFrame,
    items: list[ItemRecord],
    raw_counts: tuple[int, int, int],
    dropped_duplicates: int,
    dropped_untitled: int,
    rounds: int,
) -> DatasetStats:
    n_users, n_items, n_interactions = ordered["user"].nunique(), len(items), len(ordered)
    return DatasetStats(
        users=n_users,
        items=n_items,
        interactions=n_interactions,
        raw_users=raw_counts[0],
        raw_items=raw_counts[1],
        raw_interactions=raw_counts[2],
        dropped_duplicates=dropped_duplicates,
        dropped_untitled=dropped_untitled,
        k_core_rounds=rounds,
        split_interactions={split: int((ordered["split"] == split).sum()) for split in SPLITS},
        attribute_nodes={
            label: len({v for item in items for v in item.attributes.get(label, [])}) for label in raw.schema.attributes
        },
        attribute_edges={
            label: sum(len(item.attributes.get(label, [])) for item in items) for label in raw.schema.attributes
        },
        link_edges={rel: sum(len(item.links.get(rel, [])) for item in items) for rel in raw.schema.links},
        density=round(n_interactions / (n_users * n_items), 6),
        mean_sequence_length=round(n_interactions / n_users, 3),
    )
