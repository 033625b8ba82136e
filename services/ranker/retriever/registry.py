"""Build a retriever from its saved config, and load checkpoints written by `kgrank train retriever`."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from services.core.errors import ModelError, ModelNotFoundError
from services.ranker.retriever.base import Popularity
from services.ranker.retriever.ensemble import Ensemble
from services.ranker.retriever.lru import LRURec
from services.ranker.retriever.sasrec import SASRec

RETRIEVERS = ("lrurec", "sasrec", "pop")


def build_retriever(name: str, *, num_items: int, config: dict[str, Any]) -> nn.Module:
    if name == "ensemble":
        members = config["members"]
        return Ensemble(
            [build_retriever(m["model"], num_items=num_items, config=m) for m in members],
            [m["max_len"] for m in members],
        )
    if name == "lrurec":
        return LRURec(num_items, dim=config["dim"], blocks=config["blocks"], dropout=config["dropout"])
    if name == "sasrec":
        return SASRec(
            num_items,
            max_len=config["max_len"],
            dim=config["dim"],
            blocks=config["blocks"],
            heads=config["heads"],
            dropout=config["dropout"],
        )
    if name == "pop":
        return Popularity(torch.zeros(num_items + 1))
    raise ModelError(f"unknown retriever {name!r}; choose one of {', '.join(RETRIEVERS)}")


def load_checkpoint(path: Path) -> tuple[nn.Module, dict[str, Any]]:
    """The model in eval mode and the checkpoint's metadata (config, dataset, data hash, …)."""
    if not path.is_file():
        raise ModelNotFoundError(f"{path}: checkpoint not found (run `kgrank train retriever`)", path=str(path))
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        model = build_retriever(saved["config"]["model"], num_items=saved["num_items"], config=saved["config"])
        model.load_state_dict(saved["state_dict"])
    except (RuntimeError, KeyError, OSError, EOFError, ValueError, pickle.UnpicklingError) as e:
        raise ModelError(f"{path}: not a usable retriever checkpoint: {e}", path=str(path)) from e
    model.eval()
    return model, {key: value for key, value in saved.items() if key != "state_dict"}
