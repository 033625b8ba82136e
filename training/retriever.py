"""Train a sequential retriever, keep its best epoch, and write top-K candidates for val and test.

    kgrank train retriever --data data/ml --model lrurec --out runs/lrurec --seeds 0,1,2

Reads top to bottom: config (RetrieverConfig in training/config.py) → training windows → model →
validation (full ranking, history masked) → one loop with early stopping on val Recall@10 → best
checkpoint → candidates. Everything derives from the config and its seed; the config and the
dataset hash are saved with the checkpoint. Under torchrun the ranks split each batch
(training/distributed.py); rank 0 validates, stops the run and writes it.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the usual name

from services.core.atomic import atomic_directory, check_replaceable, write_json
from services.core.errors import DatasetError
from services.graph_loader.dataset import ProcessedDataset
from services.graph_loader.sequences import UserSequences, user_sequences
from services.ranker.candidates import CandidateHeader, CandidateSet
from services.ranker.retriever.base import Popularity, SequenceModel
from services.ranker.retriever.registry import build_retriever, load_checkpoint
from services.ranker.retriever.retrieve import FullRanking, left_pad, rank_all_items
from training.config import RetrieverConfig
from training.distributed import SINGLE_PROCESS, Workers
from training.progress import RunEstimate, RunPlan, progress_bar

logger = logging.getLogger(__name__)
RUN_MARKERS = ("training.json", "checkpoint.pt", "candidates-test.npz")  # what every run folder holds
TRIAL_USERS = 256  # users ranked before training to time a validation (one ranking batch)
HISTORY_TIMINGS = ("seconds", "train_s", "val_s")  # the wall-clock entries of an epoch's history; the rest is seeded

# -- config -------------------------------------------------------------------------------------------


# -- data -----------------------------------------------------------------------------------------------


def training_windows(sequences: UserSequences, max_len: int) -> list[np.ndarray]:
    """Each user's train part cut from the end into windows of max_len + 1 items (input + shifted labels)."""
    windows = []
    for user in range(1, sequences.users + 1):
        train = sequences.train(user)
        end = len(train)
        while end > 1:
            windows.append(train[max(0, end - max_len - 1) : end])
            end -= max_len
    return windows


def batches(windows: list[np.ndarray], batch_size: int, rng: random.Random) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled batches of similar lengths, each padded only to its longest window."""
    order = list(range(len(windows)))
    rng.shuffle(order)
    pool = batch_size * 32
    result = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: len(windows[i]))
        for offset in range(0, len(chunk), batch_size):
            group = [windows[i] for i in chunk[offset : offset + batch_size]]
            length = max(len(w) for w in group) - 1
            result.append((left_pad([w[:-1] for w in group], length), left_pad([w[1:] for w in group], length)))
    rng.shuffle(result)
    return result


# -- one training run ------------------------------------------------------------------------------------


class NextItemLoss(torch.nn.Module):
    """The next-item cross-entropy of a batch: the call DDP wraps, so that every parameter it synchronises
    (the score bias too) is used inside it.

    Without negatives, softmax over every item. With negatives (B·L positions share one uniform draw of item
    ids), each position's positive competes with those ids only; a drawn id equal to the positive is masked
    (an accidental hit would otherwise push the positive against itself). Uniform draws make every item
    equally likely, so no log-probability correction is needed.
    """

    def __init__(self, model: SequenceModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: torch.Tensor, labels: torch.Tensor, negatives: torch.Tensor | None) -> torch.Tensor:
        states = self.model(inputs)  # (B, L, D)
        if negatives is None:
            logits = self.model.scores(states)  # (B, L, N + 1)
            return F.cross_entropy(logits.view(-1, logits.size(-1)), labels.view(-1), ignore_index=0)
        embedding, bias = self.model.embedding.weight, self.model.bias
        positive = (states * embedding[labels]).sum(-1, keepdim=True) + bias[labels].unsqueeze(-1)
        drawn = states @ embedding[negatives].T + bias[negatives]  # (B, L, negatives)
        drawn = drawn.masked_fill(negatives == labels.unsqueeze(-1), float("-inf"))
        logits = torch.cat([positive, drawn], dim=-1)
        targets = torch.where(labels == 0, -100, 0)  # padding positions count for nothing
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-100)


@dataclass
class TrainingResult:
    config: RetrieverConfig
    best_epoch: int
    best_val_recall10: float
    epochs_run: int
    stopped_by: str
    seconds: float
    history: list[dict[str, float]]


def draw_negatives(count: int | None, num_items: int, sampler: torch.Generator) -> torch.Tensor | None:
    """`count` item ids drawn uniformly with replacement from 1..num_items (None: the full softmax)."""
    if count is None:
        return None
    return torch.randint(1, num_items + 1, (count,), generator=sampler)


def recall_at(ranking: FullRanking, k: int) -> float:
    return float(np.mean(ranking.target_ranks <= k))


def ndcg_at(ranking: FullRanking, k: int) -> float:
    ranks = ranking.target_ranks
    return float(np.mean(np.where(ranks <= k, 1.0 / np.log2(ranks + 1.0), 0.0)))


def train_retriever(
    dataset: ProcessedDataset,
    config: RetrieverConfig,
    out: Path,
    *,
    progress: bool = True,
    workers: Workers = SINGLE_PROCESS,
) -> TrainingResult:
    """Every rank returns rank 0's result; only rank 0 writes `out`."""
    config = config.resolved(dataset)
    max_len, batch_size = config.max_len or 0, config.batch_size or 0
    workers.check_batch_size(batch_size)
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    sequences = user_sequences(dataset)
    num_items = len(dataset.items)
    check_replaceable(out, markers=RUN_MARKERS)  # fail now, not after the epochs
    started = time.perf_counter()

    def validate(model: torch.nn.Module, users: list[int] | None = None) -> FullRanking:
        model.eval()
        return rank_all_items(model, sequences, "val", max_len=max_len, top_k=config.top_k, users=users)

    if config.model == "pop":
        counts = np.bincount(
            np.concatenate([sequences.train(u) for u in range(1, sequences.users + 1)]), minlength=num_items + 1
        )
        model: torch.nn.Module = Popularity(torch.as_tensor(counts))
        recall10 = recall_at(validate(model), 10)
        result = TrainingResult(config, 0, recall10, 0, "no training needed", 0.0, [{"epoch": 0, "val_R@10": recall10}])
    else:
        model = build_retriever(config.model, num_items=num_items, config=asdict(config))
        assert isinstance(model, SequenceModel)
        net = workers.wrap(NextItemLoss(model))
        sampler = torch.Generator().manual_seed(config.seed)
        workers.seed_dropout(config.seed)
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        windows = training_windows(sequences, max_len)
        estimate = RunEstimate(
            f"{config.model} seed {config.seed}:",
            RunPlan(
                epochs=config.max_epochs,
                # batches() pools multiples of batch_size, so only the last batch of an epoch is short
                steps_per_epoch=math.ceil(len(windows) / batch_size),
                validations=config.max_epochs,
                validation_users=sequences.users,
                step_unit="batch",
                stops_early=f"fewer when val R@10 has not improved for {config.patience} epochs",
                max_minutes=config.max_minutes,
            ),
            enabled=workers.is_main,
        )
        if workers.is_main:
            trial_users = list(range(1, min(TRIAL_USERS, sequences.users) + 1))
            with estimate.validation(len(trial_users)):
                validate(model, trial_users)  # in eval mode, no draws: the run stays as it was
        best_state, best_recall, best_epoch, waited, stopped_by = None, -1.0, 0, 0, "max epochs"
        history: list[dict[str, float]] = []
        show = progress and workers.is_main
        bar = progress_bar(config.max_epochs, f"{config.model} seed {config.seed}", enabled=show, unit=" epochs")
        for epoch in range(1, config.max_epochs + 1):
            model.train()
            losses = []
            epoch_batches = batches(windows, batch_size, rng)
            batch_bar = progress_bar(len(epoch_batches), f"epoch {epoch}", enabled=show, unit=" batches", leave=False)
            estimate.start_steps()
            epoch_started = time.perf_counter()
            for inputs, labels in epoch_batches:
                share = workers.share(len(inputs))
                mine = labels[share.rows]
                # every rank draws the same ids (one generator, one draw per batch), as one process would
                negatives = draw_negatives(config.negatives, num_items, sampler)
                loss = net(inputs[share.rows], mine, negatives)
                weighted = loss * share.loss_weight(int(mine.count_nonzero()), int(labels.count_nonzero()))
                optimizer.zero_grad(set_to_none=True)
                weighted.backward()
                optimizer.step()
                losses.append(weighted.item())
                batch_bar.update(1)
                estimate.step_done()
            batch_bar.close()
            train_s = time.perf_counter() - epoch_started
            epoch_loss = workers.mean(float(np.mean(losses)))
            stop = None
            if workers.is_main:
                validation_started = time.perf_counter()
                ranking = validate(model)
                recall10 = recall_at(ranking, 10)
                history.append(
                    {
                        "epoch": epoch,
                        "loss": epoch_loss,
                        "val_R@10": recall10,
                        "val_N@10": ndcg_at(ranking, 10),
                        "seconds": round(time.perf_counter() - started, 1),  # since the run began, validation included
                        "train_s": round(train_s, 1),  # this epoch's batches
                        "val_s": round(time.perf_counter() - validation_started, 1),
                    }
                )
                if recall10 > best_recall:
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                    best_recall, best_epoch, waited = recall10, epoch, 0
                else:
                    waited += 1
                bar.update(1)
                bar.set_postfix(
                    loss=f"{epoch_loss:.3f}",
                    val_r10=f"{recall10:.4f}",
                    best=f"{best_recall:.4f}@{best_epoch}",
                )
                if waited >= config.patience:
                    stop = f"no better val R@10 for {config.patience} epochs"
                elif config.max_minutes is not None and time.perf_counter() - started > config.max_minutes * 60:
                    stop = f"time budget of {config.max_minutes} min"
            stop = workers.agree(stop)
            if stop is not None:
                stopped_by = stop
                break
        bar.close()
        if not workers.is_main:
            return workers.result_from_main(None)
        assert best_state is not None
        model.load_state_dict(best_state)
        result = TrainingResult(
            config, best_epoch, best_recall, len(history), stopped_by, round(time.perf_counter() - started, 1), history
        )

    model.eval()
    if workers.is_main:
        with atomic_directory(out, markers=RUN_MARKERS) as staging:
            save_run(dataset, model, result, sequences, staging)
    return workers.result_from_main(result)


# -- outputs ---------------------------------------------------------------------------------------------


def save_run(
    dataset: ProcessedDataset,
    model: torch.nn.Module,
    result: TrainingResult,
    sequences: UserSequences,
    out: Path,
) -> None:
    """checkpoint.pt, candidates-{val,test}.npz and training.json, into a staging folder."""
    config = result.config
    checkpoint: dict[str, Any] = {
        "config": asdict(config),
        "num_items": len(dataset.items),
        "dataset": dataset.name,
        "data_hash": dataset.manifest.data_hash,
        "kgrank_version": version("kgrank"),
        "best_epoch": result.best_epoch,
        "state_dict": model.state_dict(),
    }
    torch.save(checkpoint, out / "checkpoint.pt")
    metrics = write_candidates(
        model,
        dataset,
        sequences,
        out,
        retriever=config.model,
        seed=config.seed,
        max_len=config.max_len or 0,
        top_k=config.top_k,
    )
    write_json(
        out / "training.json",
        {
            "config": asdict(config),
            "dataset": dataset.name,
            "data_hash": dataset.manifest.data_hash,
            "best_epoch": result.best_epoch,
            "best_val_R@10": result.best_val_recall10,
            "epochs_run": result.epochs_run,
            "stopped_by": result.stopped_by,
            "seconds": result.seconds,
            "metrics_over_all_items": metrics,
            "history": result.history,
        },
    )
    logger.info("%s seed %d: %s", config.model, config.seed, json.dumps(metrics["test"]))


def write_candidates(
    model: torch.nn.Module,
    dataset: ProcessedDataset,
    sequences: UserSequences,
    out: Path,
    *,
    retriever: str,
    seed: int,
    max_len: int,
    top_k: int,
) -> dict[str, dict[str, float]]:
    """candidates-{val,test}.npz for every user; returns the retriever's metrics over all items."""
    metrics = {}
    for split in ("val", "test"):
        ranking = rank_all_items(model, sequences, split, max_len=max_len, top_k=top_k)
        header = CandidateHeader(
            dataset=dataset.name,
            data_hash=dataset.manifest.data_hash,
            split=split,
            retriever=retriever,
            seed=seed,
            top_k=top_k,
        )
        CandidateSet(header, ranking.users, ranking.top_items, ranking.top_scores).save(out / f"candidates-{split}.npz")
        metrics[split] = {f"R@{k}": recall_at(ranking, k) for k in (1, 5, 10, 20, 50)} | {
            f"N@{k}": ndcg_at(ranking, k) for k in (5, 10)
        }
    return metrics


def recompute_candidates(dataset: ProcessedDataset, run: Path, *, top_k: int) -> dict[str, dict[str, float]]:
    """Candidates again from a run's checkpoint (e.g. more of them), on the dataset it was trained on."""
    model, saved = load_checkpoint(run / "checkpoint.pt")
    if saved["data_hash"] != dataset.manifest.data_hash:
        raise DatasetError(
            f"{run} was trained on {saved['dataset']} ({saved['data_hash'][:12]}), not on this version of "
            f"{dataset.name} ({dataset.manifest.data_hash[:12]})"
        )
    config = saved["config"]
    return write_candidates(
        model,
        dataset,
        user_sequences(dataset),
        run,
        retriever=config["model"],
        seed=config["seed"],
        max_len=config["max_len"],
        top_k=top_k,
    )
