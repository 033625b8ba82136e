"""The size of a `--base-model tiny` ranker (kept apart from the model code, which imports transformers)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TinyLlamaConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    vocab_size: int = Field(default=8192, ge=512, description="BPE vocabulary trained on the dataset's text")
    hidden_size: int = Field(default=128, ge=16)
    layers: int = Field(default=2, ge=1)
    heads: int = Field(default=4, ge=1)
    max_positions: int = Field(default=2048, ge=128)
