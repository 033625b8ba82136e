"""Rank every item for every user with the history masked: validation metrics and top-K candidates.

Ties are broken by item id (lower first), the same rule for the candidate lists and for the rank of
the true item, so the two always agree. When fewer than K items are left once the history is masked,
the list ends in item 0 (padding) with score -inf: "no further candidate".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from services.graph_loader.sequences import EvalSplit, UserSequences
from services.ranker.retriever.base import NextItemScorer


@dataclass(frozen=True)
class FullRanking:
    users: np.ndarray  # (U,) dense user ids
    top_items: np.ndarray  # (U, K) best first
    top_scores: np.ndarray  # (U, K)
    target_ranks: np.ndarray  # (U,) 1-based rank of the true item among all items not in the history


def left_pad(histories: Sequence[np.ndarray], max_len: int) -> torch.Tensor:
    """The last `max_len` items of each history, right-aligned, 0 = padding."""
    batch = torch.zeros(len(histories), max_len, dtype=torch.long)
    for row, history in enumerate(histories):
        kept = history[-max_len:]
        if len(kept):
            batch[row, max_len - len(kept) :] = torch.as_tensor(kept, dtype=torch.long)
    return batch


def top_k_stable(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the `k` best scores of each row of a 2-D tensor, best first, lower index first among equal
    scores: exactly what a stable descending sort of the whole row gives, without sorting whole rows (with a
    catalogue of 118k items the full sort made validation sort-bound). Rows where a tie crosses the k-th place
    (e.g. fewer than k finite scores) fall back to the full stable sort."""
    k = min(k, scores.size(1))
    kth = torch.topk(scores, k, dim=1).values[:, -1:]
    at_least_kth = scores >= kth
    clean = at_least_kth.sum(dim=1) == k
    order = torch.empty(scores.size(0), k, dtype=torch.long)
    if clean.any():
        ids = at_least_kth[clean].nonzero()[:, 1].view(-1, k)  # row-major: ascending ids within each row
        within = torch.sort(scores[clean].gather(1, ids), dim=1, descending=True, stable=True).indices
        order[clean] = ids.gather(1, within)
    if not clean.all():
        order[~clean] = torch.sort(scores[~clean], dim=1, descending=True, stable=True).indices[:, :k]
    return order


@torch.inference_mode()
def rank_all_items(
    scorer: NextItemScorer,
    sequences: UserSequences,
    split: EvalSplit,
    *,
    max_len: int,
    top_k: int,
    batch_size: int = 256,
    users: Sequence[int] | None = None,
) -> FullRanking:
    users = np.asarray(users if users is not None else range(1, sequences.users + 1), dtype=np.int64)
    top_items, top_scores, ranks = [], [], []
    for start in range(0, len(users), batch_size):
        chunk = users[start : start + batch_size]
        histories = [sequences.history(int(u), split) for u in chunk]
        scores = scorer.score_next(left_pad(histories, max_len)).float()
        for row, history in enumerate(histories):
            scores[row, torch.as_tensor(history, dtype=torch.long)] = float("-inf")
        targets = torch.as_tensor([sequences.target(int(u), split) for u in chunk], dtype=torch.long)
        target_scores = scores.gather(1, targets.unsqueeze(1))
        ids = torch.arange(scores.size(1)).unsqueeze(0)
        ahead = (scores > target_scores) | ((scores == target_scores) & (ids < targets.unsqueeze(1)))
        ranks.append((ahead.sum(dim=1) + 1).numpy())
        order = top_k_stable(scores, top_k)
        chosen = scores.gather(1, order)
        top_items.append(torch.where(torch.isfinite(chosen), order, 0).numpy())
        top_scores.append(chosen.numpy())
    return FullRanking(
        users=users,
        top_items=np.concatenate(top_items).astype(np.int32),
        top_scores=np.concatenate(top_scores).astype(np.float32),
        target_ranks=np.concatenate(ranks).astype(np.int64),
    )
