"""Choosing the fusion weight on val (services/ranker/fusion.py mixes the scores; this picks the mix).

Every weight of the grid is tried on the val examples (users whose val item the retriever put in its
top 20, candidates in retriever order) and the one with the best val NDCG@10 is kept; among equals
the smallest, i.e. the most trust in the ranker. Test data never takes part.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from services.ranker.fusion import WEIGHT_GRID, FusionChoice, fuse
from training.evaluation.metrics import per_user_metrics
from training.examples import Example


def val_ndcg10(orders: Sequence[np.ndarray], examples: Sequence[Example]) -> float:
    """NDCG@10 of candidate orders (positions, best first) against each example's true item."""
    if not examples:
        return 0.0
    ranks = np.array(
        [1 + int(np.flatnonzero(order == e.target_position)[0]) for order, e in zip(orders, examples, strict=True)]
    )
    return float(per_user_metrics(ranks, [10])["N@10"].mean())


def choose_fusion(scores: Sequence[np.ndarray], examples: Sequence[Example], *, retriever: str) -> FusionChoice | None:
    """The best weight on val for these model scores, or None when the examples carry no retriever scores."""
    if not examples or any(e.task.retriever_scores is None for e in examples):
        return None
    curve = []
    for weight in WEIGHT_GRID:
        orders = [
            np.argsort(-fuse(s, e.task.retriever_scores, weight), kind="stable")  # type: ignore[arg-type]
            for s, e in zip(scores, examples, strict=True)
        ]
        curve.append((weight, val_ndcg10(orders, examples)))
    best_weight, best_value = max(curve, key=lambda point: (point[1], -point[0]))
    return FusionChoice(
        weight=best_weight,
        retriever=retriever,
        val_users=len(examples),
        val_ndcg10=best_value,
        val_ndcg10_ranker=curve[0][1],
        val_ndcg10_retriever=curve[-1][1],
        curve=curve,
    )
