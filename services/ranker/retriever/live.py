"""A trained retriever at serving time: the request's candidates scored from the user's live history,
or (a request without candidates) the catalogue's best items for that history, seen items left out.

Fusion (services/ranker/fusion.py) mixes these scores with the ranker's; they are the numbers the
retriever's candidate files hold for the same history, computed here for one request at a time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from pathlib import Path

import numpy as np
import torch

from services.core.errors import ModelError
from services.graph_loader.dataset import ProcessedDataset
from services.ranker.retriever.registry import load_checkpoint
from services.ranker.retriever.retrieve import left_pad, top_k_stable

CHECKPOINT = "checkpoint.pt"


class LiveRetriever:
    def __init__(self, run: Path, dataset: ProcessedDataset) -> None:
        self.model, saved = load_checkpoint(run / CHECKPOINT)
        if saved.get("data_hash") != dataset.manifest.data_hash:
            raise ModelError(
                f"{run} was trained on another dataset or version than {dataset.name}; serve the retriever run "
                "that was trained on this data"
            )
        self.max_len = int(saved["config"]["max_len"])
        self.name = str(saved["config"]["model"])
        self.version = hashlib.sha256((run / CHECKPOINT).read_bytes()).hexdigest()[:16]
        self._index = {item.id: item.idx for item in dataset.items}
        self._ids = {item.idx: item.id for item in dataset.items}

    def scores(self, sequence: Sequence[str], candidates: Sequence[str]) -> np.ndarray:
        """The retriever's score of each candidate after `sequence` (item ids, oldest first).

        Items the retriever never saw (items created through the API after training) are left out of the
        history, and as candidates get the lowest score among the others: the retriever has no opinion on
        them, the ranker's reading of their graph paths decides.
        """
        logits = self._next(sequence)
        known = [self._index[c] for c in candidates if c in self._index]
        floor = float(logits[known].min()) if known else 0.0
        return np.array(
            [float(logits[self._index[c]]) if c in self._index else floor for c in candidates], dtype=np.float64
        )

    @torch.inference_mode()
    def top(self, sequence: Sequence[str], *, seen: Collection[str], count: int) -> list[str]:
        """The `count` best items after `sequence`, none of `seen`: ties go to the lower index (as in
        evaluation), items the retriever has no embedding for never come up."""
        logits = self._next(sequence)
        logits[0] = float("-inf")  # padding, not an item
        masked = [self._index[i] for i in seen if i in self._index]
        if masked:
            logits[masked] = float("-inf")
        order = top_k_stable(logits.unsqueeze(0), count)[0]
        return [self._ids[int(i)] for i in order.tolist() if torch.isfinite(logits[i]) and int(i) in self._ids]

    @torch.inference_mode()
    def _next(self, sequence: Sequence[str]) -> torch.Tensor:
        history = np.array([self._index[i] for i in sequence if i in self._index][-self.max_len :], dtype=np.int64)
        return self.model.score_next(left_pad([history], self.max_len))[0].float()
