"""A trained (or deliberately untrained) preference module, loaded for scoring paths and candidates."""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from services.core.errors import ModelError, ModelNotFoundError
from services.graph_loader.schema import GraphSchema
from services.ranker.paths.models import UserPaths
from services.ranker.preference.features import encode_paths, feature_size
from services.ranker.preference.model import PreferenceModel
from services.ranker.prompt import ScoredPath

PREFERENCE_FILE = "preference.pt"


class PreferenceScorer:
    def __init__(self, model: PreferenceModel, schema: GraphSchema, meta: dict[str, Any]) -> None:
        self.model = model.eval()
        self.schema = schema
        self.meta = meta

    @classmethod
    def create(cls, *, users: int, schema: GraphSchema, dim: int, seed: int) -> PreferenceScorer:
        torch.manual_seed(seed)
        model = PreferenceModel(users=users, features=feature_size(schema), dim=dim)
        return cls(model, schema, {"users": users, "dim": dim, "seed": seed, "trained": False})

    def save(self, path: Path, **meta: Any) -> None:
        self.meta = self.meta | meta
        payload = {
            "schema": self.schema.model_dump(mode="json"),
            "meta": self.meta,
            "state_dict": self.model.state_dict(),
        }
        partial = path.with_name(f".{path.name}.partial")
        torch.save(payload, partial)
        partial.replace(path)

    @classmethod
    def load(cls, path: Path) -> PreferenceScorer:
        if path.is_dir():
            path = path / PREFERENCE_FILE
        if not path.is_file():
            raise ModelNotFoundError(f"{path}: preference module not found (run `kgrank train preference`)")
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            schema = GraphSchema.model_validate(saved["schema"])
            meta = saved["meta"]
            model = PreferenceModel(users=meta["users"], features=feature_size(schema), dim=meta["dim"])
            model.load_state_dict(saved["state_dict"])
        except (RuntimeError, KeyError, OSError, EOFError, ValueError, pickle.UnpicklingError) as e:
            raise ModelError(f"{path}: not a usable preference module: {e}") from e
        return cls(model, schema, meta)

    @torch.inference_mode()
    def score_paths(self, examples: Sequence[tuple[int, UserPaths]]) -> list[list[ScoredPath]]:
        """Every path of every (dense user id, UserPaths) example with its score."""
        batch, ordered = encode_paths(self._known(examples), self.schema, candidates=self._width(examples))
        scores = self.model.distinct_path_scores(batch).tolist() if batch.users.numel() else []
        result, offset = [], 0
        for paths in ordered:
            result.append([ScoredPath(p, s) for p, s in zip(paths, scores[offset : offset + len(paths)], strict=True)])
            offset += len(paths)
        return result

    @torch.inference_mode()
    def candidate_scores(self, examples: Sequence[tuple[int, UserPaths]]) -> list[np.ndarray]:
        """One score per candidate of each example, in its candidate order (path scores as score_paths gives them)."""
        width = self._width(examples)
        batch, _ = encode_paths(self._known(examples), self.schema, candidates=width)
        table = self.model.candidate_scores(batch, self.model.distinct_path_scores(batch)).numpy()
        return [table[row, : len(paths.candidates)] for row, (_, paths) in enumerate(examples)]

    def _known(self, examples: Sequence[tuple[int, UserPaths]]) -> list[tuple[int, UserPaths]]:
        """Users the module never saw share row 0."""
        users = self.meta["users"]
        return [(user if 0 < user <= users else 0, paths) for user, paths in examples]

    @staticmethod
    def _width(examples: Sequence[tuple[int, UserPaths]]) -> int:
        return max((len(paths.candidates) for _, paths in examples), default=1)
