"""Examples and their relation paths for training the preference module and the LLM ranker.

Training examples are sampled train prefixes (docs/method.md §5); validation examples are the val users
whose true item the retriever put in their top 20. Paths come from one batched export per set,
cached under DATA/cache and keyed by the dataset version and path settings (the cutoffs make the
paths of train and val examples the same whether the graph holds train or all interactions).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from services.graph_loader.dataset import ProcessedDataset
from services.graph_loader.sequences import user_sequences
from services.ranker.candidates import CandidateSet
from services.ranker.context import TaskContext
from services.ranker.paths.models import PathConfig, UserPaths
from services.ranker.retriever.registry import load_checkpoint
from services.ranker.retriever.retrieve import left_pad, top_k_stable
from training.examples import Example, Ranking, TrainCandidates, training_examples, validation_examples
from training.path_export import export_paths

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RankingData:
    train: tuple[list[Example], list[UserPaths]]
    val: tuple[list[Example], list[UserPaths]]


def retriever_ranking(run: Path) -> Ranking:
    """The retriever's top items for a history, best first (callers drop what they must not show)."""
    model, saved = load_checkpoint(run / "checkpoint.pt")
    max_len = saved["config"]["max_len"]

    @torch.inference_mode()
    def top_items(histories: list[np.ndarray], k: int) -> np.ndarray:
        scores = model.score_next(left_pad(histories, max_len))
        return top_k_stable(scores, min(k, scores.size(1) - 1)).numpy()

    return top_items


def ranking_data(
    dataset: ProcessedDataset,
    context: TaskContext,
    *,
    retriever_run: Path,
    train_examples: int,
    seed: int,
    candidates: TrainCandidates,
    path_config: PathConfig,
    cache_dir: Path,
    progress: bool = True,
) -> RankingData:
    sequences = user_sequences(dataset)
    candidate_set = CandidateSet.load(retriever_run / "candidates-val.npz")
    candidate_set.check_matches(
        dataset=dataset.name,
        data_hash=dataset.manifest.data_hash,
        users=len(dataset.users),
        items=len(dataset.items),
    )
    # With the retriever's candidates this ranks every sampled prefix with it: seconds, minutes on big data.
    logger.info("sampling %d training prefixes (%s candidates)", train_examples, candidates)
    train = training_examples(
        dataset,
        sequences,
        count=train_examples,
        seed=seed,
        kind=candidates,
        retriever=None if candidates == "random" else retriever_ranking(retriever_run),
    )
    val = validation_examples(dataset, sequences, candidate_set)
    identity = {"data_hash": dataset.manifest.data_hash, "paths": path_config.model_dump()}
    return RankingData(
        train=(
            train,
            export_paths(train, context, cache_dir=cache_dir, identity=identity, progress=progress),
        ),
        val=(val, export_paths(val, context, cache_dir=cache_dir, identity=identity, progress=progress)),
    )
