"""Relation paths as tensors: what the preference module sees of each path.

Per path: its relation-type composition (share of hops of each type), its length, the rating and
recency of the history item it starts from, and the identity of the node it passes through (hashed
into buckets, so "Al Pacino" or "Drama" can matter to a user in their own way).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from services.graph_loader.schema import GraphSchema
from services.ranker.paths.models import RelationPath, UserPaths

MAX_HOPS = 3
NODE_BUCKETS = 4096


def node_bucket(label: str, key: str) -> int:
    """Stable across runs and machines (Python's hash() is salted); bucket 0 means "no middle node"."""
    return 1 + zlib.crc32(f"{label}\x00{key}".encode()) % (NODE_BUCKETS - 1)


def feature_size(schema: GraphSchema) -> int:
    return len(schema.path_types) + MAX_HOPS + 3


@dataclass(frozen=True)
class PathBatch:
    """Paths of many (user, candidates) examples, flattened.

    `features` (P, F), `buckets` (P,), `users` (P,) per path; `slot` (P,) = example * C + candidate
    position, the candidate each path leads to; `examples` and `candidates` give the shape E × C.
    """

    features: torch.Tensor
    buckets: torch.Tensor
    users: torch.Tensor
    slot: torch.Tensor
    examples: int
    candidates: int


def encode_paths(
    examples: Sequence[tuple[int, UserPaths]], schema: GraphSchema, *, candidates: int
) -> tuple[PathBatch, list[list[RelationPath]]]:
    """Tensors for (dense user id, UserPaths) examples; also the paths in the same order as the rows."""
    type_index = {rel_type: i for i, rel_type in enumerate(schema.path_types)}
    width = feature_size(schema)
    rows, buckets, users, slots, ordered = [], [], [], [], []
    for example, (user, paths) in enumerate(examples):
        history = {item.item_id: (n, item.rating) for n, item in enumerate(paths.history)}
        letters = {item.item_id: n for n, item in enumerate(paths.candidates)}
        kept = []
        for path in paths.paths:
            features = np.zeros(width, dtype=np.float32)
            for hop in path.hops:
                features[type_index[hop.type]] += 1.0 / path.length
            features[len(type_index) + min(path.length, MAX_HOPS) - 1] = 1.0
            position, rating = history[path.history_item]
            base = len(type_index) + MAX_HOPS
            features[base] = 0.0 if rating is None else rating / 5.0
            features[base + 1] = 0.0 if rating is None else 1.0
            features[base + 2] = (len(paths.history) - position) / max(1, len(paths.history))
            middle = path.nodes[1] if path.length > 1 else None
            rows.append(features)
            buckets.append(0 if middle is None else node_bucket(middle.label, middle.key))
            users.append(user)
            slots.append(example * candidates + letters[path.candidate])
            kept.append(path)
        ordered.append(kept)
    batch = PathBatch(
        features=torch.as_tensor(np.array(rows, dtype=np.float32).reshape(-1, width)),
        buckets=torch.as_tensor(buckets, dtype=torch.long),
        users=torch.as_tensor(users, dtype=torch.long),
        slot=torch.as_tensor(slots, dtype=torch.long),
        examples=len(examples),
        candidates=candidates,
    )
    return batch, ordered
