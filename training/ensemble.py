"""Combine trained retriever runs into one ensemble run (services/ranker/retriever/ensemble.py).

    kgrank train ensemble --data data/ml --runs runs/lrurec,runs/sasrec --out runs/ensemble

The members' checkpoints go into one `checkpoint.pt`; the ensemble's candidates for val and test are
written like any run's, so `evaluate`, `train preference|ranker --retriever` and `serve --retriever`
take the folder as they take a single model's. Nothing is trained: which members to combine is the
user's choice, to be made on val (training.json reports val and test metrics over all items).
"""

from __future__ import annotations

import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import torch

from services.core.atomic import atomic_directory, check_replaceable, write_json
from services.core.errors import ConfigError, DatasetError
from services.graph_loader.dataset import ProcessedDataset
from services.graph_loader.sequences import user_sequences
from services.ranker.retriever.ensemble import Ensemble
from services.ranker.retriever.registry import load_checkpoint
from training.evaluation.harness import expand_runs
from training.retriever import RUN_MARKERS, write_candidates


def build_ensemble(dataset: ProcessedDataset, runs: list[Path], out: Path, *, top_k: int = 50) -> dict[str, Any]:
    """Load every run (a run folder or a folder of seed-N runs), check them, and write the ensemble run."""
    check_replaceable(out, markers=RUN_MARKERS)
    started = time.perf_counter()
    members = expand_runs(runs)
    if len(members) < 2:
        raise ConfigError(f"an ensemble needs at least two runs; {', '.join(map(str, runs))} hold {len(members)}")
    models, configs = [], []
    for run in members:
        model, saved = load_checkpoint(run / "checkpoint.pt")
        if saved["data_hash"] != dataset.manifest.data_hash:
            raise DatasetError(f"{run} was trained on another dataset or version than {dataset.name}")
        if saved["config"]["model"] in ("pop", "ensemble"):
            raise ConfigError(f"{run}: a {saved['config']['model']} run cannot be an ensemble member")
        models.append(model)
        configs.append(saved["config"])
    ensemble = Ensemble(models, [c["max_len"] for c in configs]).eval()
    max_len = max(c["max_len"] for c in configs)
    config = {"model": "ensemble", "seed": 0, "max_len": max_len, "top_k": top_k, "members": configs}
    with atomic_directory(out, markers=RUN_MARKERS) as staging:
        torch.save(
            {
                "config": config,
                "num_items": len(dataset.items),
                "dataset": dataset.name,
                "data_hash": dataset.manifest.data_hash,
                "kgrank_version": version("kgrank"),
                "members": [str(run) for run in members],
                "state_dict": ensemble.state_dict(),
            },
            staging / "checkpoint.pt",
        )
        metrics = write_candidates(
            ensemble,
            dataset,
            user_sequences(dataset),
            staging,
            retriever="ensemble",
            seed=0,
            max_len=max_len,
            top_k=top_k,
        )
        record = {
            "config": config,
            "dataset": dataset.name,
            "data_hash": dataset.manifest.data_hash,
            "members": [str(run) for run in members],
            "seconds": round(time.perf_counter() - started, 1),
            "metrics_over_all_items": metrics,
        }
        write_json(staging / "training.json", record)
    return record
