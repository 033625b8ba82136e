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

import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the usual name
from tqdm import tqdm

from services.graph_loader.dataset import ProcessedDataset
from services.ranker.paths.models import UserPaths
from services.ranker.preference.features import PathBatch, encode_paths
from services.ranker.preference.scorer import PREFERENCE_FILE, PreferenceScorer
from training.config import PreferenceConfig
from training.evaluation.metrics import per_user_metrics
from training.examples import Example


@dataclass
class PreferenceResult:
    best_epoch: int
    best_val_ndcg10: float
    untrained_val_ndcg10: float
    epochs_run: int
    seconds: float
    history: list[dict[str, float]]


def provenance(dataset: ProcessedDataset, config: PreferenceConfig) -> dict[str, Any]:
    """What a saved module records about its origin; the ranker and `evaluate` check the data hash."""
    return {"dataset": dataset.name, "data_hash": dataset.manifest.data_hash, "config": asdict(config)}


def val_ndcg10(scorer: PreferenceScorer, examples: list[Example], paths: list[UserPaths]) -> float:
    """NDCG@10 of the module's own candidate order (ties keep the retriever order)."""
    scores = scorer.candidate_scores([(e.task.user, p) for e, p in zip(examples, paths, strict=True)])
    ranks = np.array(
        [
            1 + int(np.flatnonzero(np.argsort(-s, kind="stable") == e.target_position)[0])
            for e, s in zip(examples, scores, strict=True)
        ]
    )
    return float(per_user_metrics(ranks, [10])["N@10"].mean())


def train_preference(
    dataset: ProcessedDataset,
    config: PreferenceConfig,
    *,
    train: tuple[list[Example], list[UserPaths]],
    val: tuple[list[Example], list[UserPaths]],
    out: Path,
    progress: bool = True,
) -> PreferenceResult:
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    scorer = PreferenceScorer.create(users=len(dataset.users), schema=dataset.schema, dim=config.dim, seed=config.seed)
    untrained = val_ndcg10(scorer, *val)

    batches: list[tuple[PathBatch, torch.Tensor]] = []
    examples, paths = train
    for start in range(0, len(examples), config.batch_size):
        chunk = list(
            zip(
                examples[start : start + config.batch_size],
                paths[start : start + config.batch_size],
                strict=True,
            )
        )
        batch, _ = encode_paths(
            [(e.task.user, p) for e, p in chunk], dataset.schema, candidates=len(chunk[0][0].task.candidates)
        )
        batches.append((batch, torch.tensor([e.target_position for e, _ in chunk])))

    model = scorer.model
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    best_state, best, best_epoch, waited, history = None, -1.0, 0, 0, []
    bar = tqdm(range(1, config.max_epochs + 1), desc="preference module", disable=not progress)
    for epoch in bar:
        model.train()
        rng.shuffle(batches)
        losses = []
        for batch, targets in batches:
            loss = F.cross_entropy(model.candidate_scores(batch), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        model.eval()
        score = val_ndcg10(scorer, *val)
        history.append({"epoch": epoch, "loss": float(np.mean(losses)), "val_N@10": score})
        if score > best:
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            best, best_epoch, waited = score, epoch, 0
        else:
            waited += 1
        bar.set_postfix(loss=f"{np.mean(losses):.3f}", val_n10=f"{score:.4f}", best=f"{best:.4f}@{best_epoch}")
        if waited >= config.patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    result = PreferenceResult(
        best_epoch, best, untrained, len(history), round(time.perf_counter() - started, 1), history
    )
    out.mkdir(parents=True, exist_ok=True)
    scorer.save(
        out / PREFERENCE_FILE,
        trained=True,
        **provenance(dataset, config),
        best_epoch=best_epoch,
        val_ndcg10=best,
        untrained_val_ndcg10=untrained,
        train_examples=len(examples),
        val_examples=len(val[0]),
    )
    return result


def save_untrained(
    dataset: ProcessedDataset,
    config: PreferenceConfig,
    *,
    val: tuple[list[Example], list[UserPaths]],
    out: Path,
) -> float:
    """The module at its seeded initialisation, never trained: what the paper's code ran."""
    scorer = PreferenceScorer.create(users=len(dataset.users), schema=dataset.schema, dim=config.dim, seed=config.seed)
    score = val_ndcg10(scorer, *val)
    out.mkdir(parents=True, exist_ok=True)
    scorer.save(out / PREFERENCE_FILE, trained=False, **provenance(dataset, config), val_ndcg10=score)
    return score
