"""Train the preference module for real: paths leading to the true next item should outscore the rest.

    kgrank train preference --data data/ml --retriever runs/lrurec/seed-0 --out models/preference

Reads top to bottom: config (PreferenceConfig in training/config.py) → examples (training prefixes
with random negatives; validation users with their retrieved candidates) → relation paths (batched
export, cached) → model → listwise loss (softmax over each example's 20 candidates of their pooled
path scores) → early stopping on val NDCG@10 → preference.pt with the config and data hash.
`--untrained` saves the initial weights instead, the paper code's never-trained module, for the
ablation.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the usual name

from services.graph_loader.dataset import ProcessedDataset
from services.ranker.paths.models import UserPaths
from services.ranker.pipeline import RankingInput, RankingPipeline
from services.ranker.preference.features import PathBatch, encode_paths
from services.ranker.preference.scorer import PREFERENCE_FILE, PreferenceScorer
from services.ranker.preference.select import PreferencePaths
from training.config import PreferenceConfig
from training.examples import Example
from training.fusion import choose_fusion, val_ndcg10
from training.progress import RunEstimate, RunPlan, in_parts, progress_bar, warn_unless_better_than_untrained

logger = logging.getLogger(__name__)


@dataclass
class PreferenceResult:
    best_epoch: int
    best_val_ndcg10: float
    untrained_val_ndcg10: float
    epochs_run: int
    seconds: float
    history: list[dict[str, float]]
    fusion_weight: float | None
    fused_val_ndcg10: float | None

    @property
    def beats_untrained(self) -> bool:
        return self.best_val_ndcg10 > self.untrained_val_ndcg10


def provenance(dataset: ProcessedDataset, config: PreferenceConfig) -> dict[str, Any]:
    """What a saved module records about its origin; the ranker and `evaluate` check the data hash."""
    return {"dataset": dataset.name, "data_hash": dataset.manifest.data_hash, "config": asdict(config)}


def validate(
    scorer: PreferenceScorer, examples: list[Example], paths: list[UserPaths]
) -> tuple[float, list[np.ndarray]]:
    """NDCG@10 of the module's own candidate order through the ranking pipeline, and its scores."""
    pipeline = RankingPipeline(
        ranked_by="preference module", strategy="preference", selector=PreferencePaths(scorer), preference=scorer
    )
    inputs = [RankingInput(e.task.user, p, e.task.retriever_scores) for e, p in zip(examples, paths, strict=True)]
    scores = pipeline.model_scores(inputs, None)
    orders = [pipeline.finish(item, [], None, s).order for item, s in zip(inputs, scores, strict=True)]
    return val_ndcg10(orders, examples), scores


def encoded_batches(
    dataset: ProcessedDataset,
    train: tuple[list[Example], list[UserPaths]],
    batch_size: int,
    *,
    progress: bool,
) -> list[tuple[PathBatch, torch.Tensor]]:
    """The training examples' path features in batches of `batch_size`, with each example's target position."""
    examples, paths = train

    def encode(part: slice) -> list[tuple[PathBatch, torch.Tensor]]:
        chunk = examples[part]
        batch, _ = encode_paths(
            [(e.task.user, p) for e, p in zip(chunk, paths[part], strict=True)],
            dataset.schema,
            candidates=len(chunk[0].task.candidates),
        )
        return [(batch, torch.tensor([e.target_position for e in chunk]))]

    bar = progress_bar(len(examples), "encoding paths", enabled=progress, unit=" examples")
    return in_parts(len(examples), batch_size, encode, bar)


def train_preference(
    dataset: ProcessedDataset,
    config: PreferenceConfig,
    *,
    train: tuple[list[Example], list[UserPaths]],
    val: tuple[list[Example], list[UserPaths]],
    out: Path,
    retriever: str = "",
    progress: bool = True,
) -> PreferenceResult:
    """`retriever` names the run whose candidates the val examples are (the fusion weight is chosen on them)."""
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    scorer = PreferenceScorer.create(users=len(dataset.users), schema=dataset.schema, dim=config.dim, seed=config.seed)
    examples = train[0]
    logger.info(
        "preference module: %d training examples, %d validation users; at most %d epochs",
        len(examples),
        len(val[0]),
        config.max_epochs,
    )
    batches = encoded_batches(dataset, train, config.batch_size, progress=progress)
    estimate = RunEstimate(
        "preference module:",
        RunPlan(
            epochs=config.max_epochs,
            steps_per_epoch=len(batches),
            validations=config.max_epochs + 1,  # the untrained start, then every epoch
            validation_users=len(val[0]),
            step_unit="batch",
            stops_early=f"fewer when val N@10 has not improved for {config.patience} epochs",
        ),
    )
    with estimate.validation(len(val[0])):
        untrained, _ = validate(scorer, *val)

    model = scorer.model
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    best_state, best, best_epoch, waited, history, best_scores = None, -1.0, 0, 0, [], []
    bar = progress_bar(config.max_epochs, "preference module", enabled=progress, unit=" epochs")
    estimate.start_steps()
    for epoch in range(1, config.max_epochs + 1):
        model.train()
        rng.shuffle(batches)
        losses = []
        for batch, targets in batches:
            loss = F.cross_entropy(model.candidate_scores(batch), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            estimate.step_done()
        model.eval()
        with estimate.validation(len(val[0])):
            score, scores = validate(scorer, *val)
        history.append({"epoch": epoch, "loss": float(np.mean(losses)), "val_N@10": score})
        if score > best:
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            best, best_epoch, waited, best_scores = score, epoch, 0, scores
        else:
            waited += 1
        bar.update(1)
        bar.set_postfix(loss=f"{np.mean(losses):.3f}", val_n10=f"{score:.4f}", best=f"{best:.4f}@{best_epoch}")
        if waited >= config.patience:
            break
    bar.close()
    warn_unless_better_than_untrained(
        "the trained preference module",
        best,
        untrained,
        consequence=f"its best epoch ({best_epoch}) is saved all the same",
    )
    if best_state is not None:
        model.load_state_dict(best_state)
    fusion = choose_fusion(best_scores, val[0], retriever=retriever) if retriever else None
    result = PreferenceResult(
        best_epoch,
        best,
        untrained,
        len(history),
        round(time.perf_counter() - started, 1),
        history,
        None if fusion is None else fusion.weight,
        None if fusion is None else fusion.val_ndcg10,
    )
    out.mkdir(parents=True, exist_ok=True)
    scorer.save(
        out / PREFERENCE_FILE,
        trained=True,
        **provenance(dataset, config),
        best_epoch=best_epoch,
        val_ndcg10=best,
        untrained_val_ndcg10=untrained,
        beats_untrained=best > untrained,
        train_examples=len(examples),
        val_examples=len(val[0]),
        fusion=None if fusion is None else fusion.model_dump(mode="json"),
    )
    return result


def save_untrained(
    dataset: ProcessedDataset,
    config: PreferenceConfig,
    *,
    val: tuple[list[Example], list[UserPaths]],
    out: Path,
    retriever: str = "",
) -> float:
    """The module at its seeded initialisation, never trained: what the paper's code ran."""
    scorer = PreferenceScorer.create(users=len(dataset.users), schema=dataset.schema, dim=config.dim, seed=config.seed)
    score, scores = validate(scorer, *val)
    fusion = choose_fusion(scores, val[0], retriever=retriever) if retriever else None
    out.mkdir(parents=True, exist_ok=True)
    scorer.save(
        out / PREFERENCE_FILE,
        trained=False,
        **provenance(dataset, config),
        val_ndcg10=score,
        fusion=None if fusion is None else fusion.model_dump(mode="json"),
    )
    return score
