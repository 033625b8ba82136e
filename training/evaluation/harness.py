"""Evaluate rankers on retrieved candidates with the paper's protocol, across retriever seeds.

For every evaluated user the true item is looked up in the retriever's top-K. Users whose true item
is in the first `candidates` (20) are ranked by the ranker; the others count as misses overall and
are left out of the "subset" figures. Retrieval metrics (k up to K) come from the top-K lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from services.core.errors import ConfigError, DatasetError
from services.graph_loader.dataset import ProcessedDataset
from services.graph_loader.sequences import EvalSplit, UserSequences
from services.ranker.candidates import CandidateSet
from services.ranker.ranking import Ranker, RankingTask
from training.evaluation.metrics import MISS, per_user_metrics, rank_in_list

RANK_BATCH = 64


@dataclass(frozen=True)
class ModelSpec:
    """A named model: a ranker over the candidates of one or more retriever runs (one per seed)."""

    name: str
    runs: list[Path]
    ranker: Ranker


@dataclass
class SeedResult:
    run: Path
    seed: int
    retrieved: np.ndarray  # (U,) bool: true item in the first `candidates`
    overall: dict[str, np.ndarray]  # per-user values over all users (misses = 0)
    retrieval: dict[str, np.ndarray]  # the retriever's own per-user values, k up to top_k


@dataclass
class ModelResult:
    name: str
    ranker: str
    seeds: list[SeedResult] = field(default_factory=list)


def expand_runs(paths: Sequence[Path]) -> list[Path]:
    """A run folder, or a folder of `seed-*` run folders."""
    runs: list[Path] = []
    for path in paths:
        seeds = sorted(path.glob("seed-*"))
        runs.extend(seeds if seeds else [path])
    return runs


def evaluate_models(
    dataset: ProcessedDataset,
    sequences: UserSequences,
    models: Sequence[ModelSpec],
    *,
    split: EvalSplit,
    ks: Sequence[int],
    retrieval_ks: Sequence[int],
    candidates: int = 20,
    progress: bool = True,
) -> list[ModelResult]:
    if max(ks) > candidates:
        raise ConfigError(f"k = {max(ks)} is larger than the {candidates} candidates a ranker sees")
    results = []
    for spec in models:
        result = ModelResult(name=spec.name, ranker=spec.ranker.name)
        for run in expand_runs(spec.runs):
            candidate_set = CandidateSet.load(run / f"candidates-{split}.npz")
            candidate_set.check_matches(
                dataset=dataset.name,
                data_hash=dataset.manifest.data_hash,
                users=len(dataset.users),
                items=len(dataset.items),
            )
            if candidate_set.header.split != split:
                raise DatasetError(f"{run}: candidates are for {candidate_set.header.split}, not {split}")
            if max(retrieval_ks) > candidate_set.header.top_k or candidates > candidate_set.header.top_k:
                raise ConfigError(
                    f"{run}: kept only the top {candidate_set.header.top_k} candidates; "
                    f"asked for k = {max(*retrieval_ks, candidates)}"
                )
            result.seeds.append(
                evaluate_seed(
                    dataset,
                    sequences,
                    candidate_set,
                    spec.ranker,
                    run=run,
                    split=split,
                    ks=ks,
                    retrieval_ks=retrieval_ks,
                    candidates=candidates,
                    progress=progress,
                )
            )
        users = {len(seed.retrieved) for seed in result.seeds}
        if len(users) != 1:
            raise DatasetError(f"{spec.name}: runs cover different users ({sorted(users)})")
        results.append(result)
    if len({len(r.seeds[0].retrieved) for r in results}) > 1:
        raise DatasetError("models were evaluated on different users; paired comparisons need the same users")
    return results


def evaluate_seed(
    dataset: ProcessedDataset,
    sequences: UserSequences,
    candidate_set: CandidateSet,
    ranker: Ranker,
    *,
    run: Path,
    split: EvalSplit,
    ks: Sequence[int],
    retrieval_ks: Sequence[int],
    candidates: int,
    progress: bool,
) -> SeedResult:
    users = candidate_set.users.astype(np.int64)
    targets = np.array([sequences.target(int(u), split) for u in users])
    retrieval_ranks = np.array([rank_in_list(row, t) for row, t in zip(candidate_set.items, targets, strict=True)])
    retrieved = retrieval_ranks <= candidates
    ranks = np.full(len(users), MISS)
    tasks = [
        RankingTask(
            user=int(users[i]),
            user_id=dataset.user_id(int(users[i])),
            history=sequences.history(int(users[i]), split),
            candidates=candidate_set.valid(i, candidates),
            retriever_scores=candidate_set.valid_scores(i, candidates),
        )
        for i in np.flatnonzero(retrieved)
    ]
    positions = np.flatnonzero(retrieved)
    bar = tqdm(total=len(tasks), desc=f"{ranker.name} on {run.name}", unit=" users", disable=not progress)
    for start in range(0, len(tasks), RANK_BATCH):
        batch = tasks[start : start + RANK_BATCH]
        for offset, (task, ranked) in enumerate(zip(batch, ranker.rank(batch), strict=True)):
            if sorted(ranked.tolist()) != sorted(task.candidates.tolist()):
                raise DatasetError(f"ranker {ranker.name!r} did not return a permutation of the candidates")
            ranks[positions[start + offset]] = rank_in_list(ranked, targets[positions[start + offset]])
        bar.update(len(batch))
    bar.close()
    return SeedResult(
        run=run,
        seed=candidate_set.header.seed,
        retrieved=retrieved,
        overall=per_user_metrics(ranks, ks),
        retrieval=per_user_metrics(retrieval_ranks, retrieval_ks),
    )
