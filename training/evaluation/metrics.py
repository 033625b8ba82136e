"""Ranking metrics with one relevant item per user (docs/method.md §6).

A user's result is the 1-based rank of the true item, or MISS (infinity) when it is not in the list
at all. Recall@k = 1[rank <= k]; MRR@k = 1/rank if rank <= k; NDCG@k = 1/log2(rank + 1) if rank <= k
(the ideal DCG of one relevant item is 1). "Overall" averages over every evaluated user, counting
misses as 0; "subset" averages over the users whose true item was retrieved.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

MISS = np.inf
METRICS = ("R", "M", "N")  # Recall, MRR, NDCG — the paper's table abbreviations


def metric_name(metric: str, k: int) -> str:
    return f"{metric}@{k}"


def rank_in_list(ranked: Sequence[int] | np.ndarray, target: int) -> float:
    """Position (1-based) of `target` in an ordered list, MISS if absent."""
    hits = np.flatnonzero(np.asarray(ranked) == target)
    return float(hits[0] + 1) if hits.size else MISS


def rank_from_scores(scores: np.ndarray, target: int, *, excluded: Iterable[int] = ()) -> float:
    """Rank of `target` among all items by score, ties counted against it (pessimistic).

    A model that scores everything equally must not look perfect, so every other item with the same
    score ranks ahead of the target. `excluded` items (the user's history) are left out.
    """
    scores = np.asarray(scores, dtype=np.float64).copy()
    excluded_ids = np.fromiter(excluded, dtype=np.int64)
    scores[excluded_ids[excluded_ids != target]] = -np.inf
    target_score = scores[target]
    if not np.isfinite(target_score):
        return MISS
    return float(np.sum(scores > target_score) + np.sum(scores == target_score))


def per_user_metrics(ranks: np.ndarray, ks: Iterable[int]) -> dict[str, np.ndarray]:
    """One value per user for every metric and k."""
    ranks = np.asarray(ranks, dtype=np.float64)
    result: dict[str, np.ndarray] = {}
    for k in ks:
        hit = ranks <= k
        safe = np.where(hit, ranks, 1.0)
        result[metric_name("R", k)] = hit.astype(np.float64)
        result[metric_name("M", k)] = np.where(hit, 1.0 / safe, 0.0)
        result[metric_name("N", k)] = np.where(hit, 1.0 / np.log2(safe + 1.0), 0.0)
    return result
