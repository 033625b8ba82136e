"""PreferenceModel: a score per (user, relation path); candidate scores pool their paths' scores.

s(u, p) = w·f(p) + ⟨e_u, W f(p)⟩ + ⟨e_u, n_b(p)⟩ + β_b(p), where f(p) are the path's features,
e_u the user's embedding (row 0: users the model never saw), n_b and β_b the embedding and bias of
the node the path passes through. A candidate's score is log Σ exp over its paths and a learned
"no path" score, so more and better paths raise it, plus a learned prior for its position in the
list (which learns the retriever's order when trained on retrieved lists, and nothing on shuffled
ones). Trained listwise (training/preference.py).
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from services.ranker.preference.features import NODE_BUCKETS, PathBatch
from services.ranker.prompt import MAX_CANDIDATES


class PreferenceModel(nn.Module):
    def __init__(self, *, users: int, features: int, dim: int = 32) -> None:
        super().__init__()
        self.users = nn.Embedding(users + 1, dim)
        self.linear = nn.Linear(features, 1)
        self.project = nn.Linear(features, dim, bias=False)
        self.nodes = nn.Embedding(NODE_BUCKETS, dim)
        self.node_bias = nn.Embedding(NODE_BUCKETS, 1)
        self.no_path = nn.Parameter(torch.zeros(()))
        self.position = nn.Parameter(torch.zeros(MAX_CANDIDATES))
        for table in (self.users, self.nodes):
            nn.init.normal_(table.weight, std=0.05)
        nn.init.zeros_(self.node_bias.weight)

    def path_scores(self, batch: PathBatch) -> torch.Tensor:
        """(P,) one score per path."""
        user = self.users(batch.users)
        return (
            self.linear(batch.features).squeeze(-1)
            + (user * self.project(batch.features)).sum(-1)
            + (user * self.nodes(batch.buckets)).sum(-1)
            + self.node_bias(batch.buckets).squeeze(-1)
        )

    def distinct_path_scores(self, batch: PathBatch) -> torch.Tensor:
        """(P,) as path_scores, computed once per distinct (user, features, node) row. Paths that differ only in
        their candidate have the same score in exact arithmetic, but a matrix product may round a row differently
        by its place in the batch: evaluation (many users per batch) and serving (one) would then break such a
        tie in different directions and show different paths. Scored once, they tie exactly on every side, and
        the canonical path order decides."""
        # float64 holds every float32 feature and every id below 2**53 exactly
        keys = torch.cat([batch.features.double(), batch.buckets[:, None].double(), batch.users[:, None].double()], 1)
        distinct, inverse = torch.unique(keys, dim=0, return_inverse=True)
        width = batch.features.size(1)
        rows = replace(
            batch,
            features=distinct[:, :width].float(),
            buckets=distinct[:, width].long(),
            users=distinct[:, width + 1].long(),
        )
        return self.path_scores(rows)[inverse]

    def candidate_scores(self, batch: PathBatch, path_scores: torch.Tensor | None = None) -> torch.Tensor:
        """(E, C): log(exp(no_path) + Σ exp(path scores)) + the position prior, for each candidate."""
        scores = self.path_scores(batch) if path_scores is None else path_scores
        slots = batch.examples * batch.candidates
        floor = self.no_path.detach().expand(slots).clone()
        peak = floor.scatter_reduce(0, batch.slot, scores.detach(), reduce="amax")  # for a stable sum of exps
        total = torch.exp(self.no_path - peak).scatter_add(0, batch.slot, torch.exp(scores - peak[batch.slot]))
        pooled = (peak + torch.log(total)).view(batch.examples, batch.candidates)
        return pooled + self.position[: batch.candidates]
