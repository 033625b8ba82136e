"""The configs of the training jobs, typed and overridable from the CLI, saved with what they train.

They live apart from the jobs so that the command line can show their defaults without loading
torch or transformers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal

from services.graph_loader.dataset import ProcessedDataset
from services.ranker.llm.tiny_config import TinyLlamaConfig
from services.ranker.prompt import PromptConfig
from services.ranker.strategy import PathStrategy

TINY = "tiny"
# Validation steps are fixed by the step count, never by the clock: a time-triggered validation would make the
# chosen best step (and so the saved model) depend on how fast the machine was. By default a run validates
# after every fifth of it (val feedback early, and at least five candidates for the best step), and every 100
# steps on long runs.
VALIDATIONS_PER_RUN = 5
LONGEST_EVAL_EVERY = 100


def default_eval_every(steps: int) -> int:
    return max(1, min(LONGEST_EVAL_EVERY, steps // VALIDATIONS_PER_RUN))


@dataclass(frozen=True)
class RetrieverConfig:
    model: Literal["lrurec", "sasrec", "pop"] = "lrurec"
    seed: int = 0
    max_len: int | None = None  # None: 200 when users have long histories (MovieLens), else 50 (Amazon)
    batch_size: int | None = None  # None: 16 with long histories, else 64 (the paper's settings)
    dim: int = 64
    blocks: int = 2
    heads: int = 2  # SASRec only
    dropout: float = 0.2
    lr: float = 1e-3
    weight_decay: float = 0.01
    max_epochs: int = 500
    patience: int = 20  # validations without a better val Recall@10 before stopping
    top_k: int = 50  # candidates kept per user (the ranker reads the first 20)
    max_minutes: float | None = None  # stop (keeping the best epoch so far) after this long
    # None: softmax over the whole catalogue (the paper's loss). N: sampled softmax, the positive against N items
    # drawn uniformly per batch and shared by its positions; cost grows with N, not with the catalogue.
    negatives: int | None = None

    def resolved(self, dataset: ProcessedDataset) -> RetrieverConfig:
        long_histories = dataset.stats.mean_sequence_length > 50
        return replace(
            self,
            max_len=self.max_len or (200 if long_histories else 50),
            batch_size=self.batch_size or (16 if long_histories else 64),
        )


@dataclass(frozen=True)
class PreferenceConfig:
    seed: int = 0
    dim: int = 32
    lr: float = 5e-3
    weight_decay: float = 1e-5
    batch_size: int = 64
    max_epochs: int = 60
    patience: int = 8


@dataclass(frozen=True)
class RankerConfig:
    base_model: str = TINY  # "tiny", a fetched base model (smollm2, gemma3) or a local checkpoint folder
    path_strategy: PathStrategy = "preference"
    seed: int = 0
    budget_tokens: int | None = None  # None: 2286 (the paper's) for a real checkpoint, 1024 for tiny
    title_tokens: int = 32
    history_items: int = 20
    paths_per_history_item: int = 1
    lora: bool | None = None  # None: LoRA for a real checkpoint, full training for tiny
    lora_r: int = 8
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] = ("q_proj", "v_proj")
    load_in_4bit: bool = False  # QLoRA; needs a GPU and bitsandbytes
    lr: float | None = None  # None: 1e-4 with LoRA (the paper's), 1e-3 for tiny
    batch_size: int = 8
    epochs: int | None = None  # None: 1 with LoRA (the paper's), 3 for tiny
    warmup_steps: int | None = None  # None: 100 (the paper's), at most a tenth of the run
    eval_every: int | None = None  # None: default_eval_every of the run's steps
    max_minutes: float | None = None
    tiny: TinyLlamaConfig = field(default_factory=TinyLlamaConfig)

    def resolved(self, train_examples: int) -> RankerConfig:
        tiny = self.base_model == TINY
        lora = (not tiny) if self.lora is None else self.lora
        epochs = self.epochs or (1 if lora else 3)
        return replace(
            self,
            lora=lora,
            budget_tokens=self.budget_tokens or (1024 if tiny else 2286),
            lr=self.lr if self.lr is not None else (1e-4 if lora else 1e-3),  # 0 is a valid choice (nothing moves)
            epochs=epochs,
            eval_every=self.eval_every or default_eval_every(self.steps_per_epoch(train_examples) * epochs),
        )

    def steps_per_epoch(self, train_examples: int) -> int:
        return math.ceil(train_examples / self.batch_size)

    def prompt(self) -> PromptConfig:
        return PromptConfig(
            budget_tokens=self.budget_tokens or 2286,
            title_tokens=self.title_tokens,
            history_items=self.history_items,
            relations=self.path_strategy != "none",
            paths_per_history_item=self.paths_per_history_item,
        )
