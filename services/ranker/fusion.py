"""Score fusion: the ranker's scores and the retriever's, each standardised per user, mixed by one weight.

A ranker's job is to add what the retriever does not know. Letter log-probabilities and retriever
logits live on different scales, so each user's scores are standardised over that user's candidates
(zero mean, unit spread) before mixing: fused = (1 - w) * z(ranker) + w * z(retriever). w = 0 is the
ranker alone, w = 1 the retriever's own order. The weight is chosen on val (training/fusion.py) and
saved with the model; evaluation and serving read it from there.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

WEIGHT_GRID = tuple(round(0.05 * step, 2) for step in range(21))


class FusionChoice(BaseModel):
    """The weight chosen on val, and what it was chosen from (saved with the model it belongs to)."""

    model_config = ConfigDict(frozen=True)

    weight: float = Field(ge=0.0, le=1.0, description="the retriever's share: 0 = ranker alone, 1 = retriever")
    retriever: str = Field(description="the retriever run whose val candidates chose it")
    val_users: int = Field(ge=0)
    val_ndcg10: float = Field(description="val NDCG@10 of the fused order at this weight")
    val_ndcg10_ranker: float = Field(description="val NDCG@10 of the ranker alone (w = 0)")
    val_ndcg10_retriever: float = Field(description="val NDCG@10 of the retriever's order (w = 1)")
    curve: list[tuple[float, float]] = Field(description="(weight, val NDCG@10) for every weight tried")


def standardised(scores: np.ndarray) -> np.ndarray:
    """Zero mean and unit standard deviation over one user's candidates; all zeros when they are all equal."""
    values = np.asarray(scores, dtype=np.float64)
    spread = values.std()
    if not np.isfinite(spread) or spread < 1e-12:
        return np.zeros_like(values)
    return (values - values.mean()) / spread


def fuse(ranker: np.ndarray, retriever: np.ndarray, weight: float) -> np.ndarray:
    if len(ranker) != len(retriever):
        raise ValueError(f"{len(ranker)} ranker scores but {len(retriever)} retriever scores")
    return (1.0 - weight) * standardised(ranker) + weight * standardised(retriever)
