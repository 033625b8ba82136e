"""`kgrank_ranker.json`: what a ranker checkpoint was trained on, read by every scorer.

The letter token ids are taken from how the training targets were tokenized, never looked up again
at scoring time (the paper's code scored other ids than it trained on).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from services.core.errors import ModelError, ModelNotFoundError
from services.ranker.fusion import FusionChoice
from services.ranker.prompt import LETTERS, PromptConfig
from services.ranker.strategy import PathStrategy

METADATA_FILE = "kgrank_ranker.json"


class RankerMetadata(BaseModel):
    format: Literal["kgrank-ranker/1"] = "kgrank-ranker/1"
    prompt_format_version: int
    letter_token_ids: list[int] = Field(min_length=len(LETTERS), max_length=len(LETTERS))
    eos_token_id: int
    dataset: str
    data_hash: str
    base_model: str
    path_strategy: PathStrategy
    prompt: PromptConfig
    kgrank_version: str
    training: dict[str, float | int | str] = Field(default_factory=dict)
    val_curve: list[tuple[int, float]] = Field(default_factory=list)  # (step, val N@10) at each validation
    fusion: FusionChoice | None = None  # the retriever weight chosen on val (None: never fused)

    def save(self, model_dir: Path) -> None:
        from services.core.atomic import atomic_write_text

        atomic_write_text(model_dir / METADATA_FILE, self.model_dump_json(indent=2) + "\n")

    @classmethod
    def load(cls, model_dir: Path) -> RankerMetadata:
        path = model_dir / METADATA_FILE
        if not path.is_file():
            raise ModelNotFoundError(
                f"{model_dir}: no {METADATA_FILE}; not a ranker trained by `kgrank train ranker`",
                path=str(model_dir),
            )
        try:
            return cls.model_validate_json(path.read_bytes())
        except ValidationError as e:
            raise ModelError(f"{path}: invalid ranker metadata: {e.errors()[0]['msg']}", path=str(path)) from e
