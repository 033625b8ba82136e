"""The models a running API serves, as one swappable unit: checkpoint metadata, the ranking pipeline, the
retriever and the scorer behind its micro-batcher.

A request takes the unit once and uses it throughout, so a hot reload (POST /admin/reload) never mixes two
models in one answer; the unit it replaced is closed when its last request is done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.core.errors import ConfigError, ModelError
from services.core.settings import Settings
from services.graph_loader.dataset import ProcessedDataset
from services.ranker.llm.metadata import RankerMetadata
from services.ranker.llm.scorer import TransformersScorer, load_tokenizer
from services.ranker.llm.vllm import AsyncVLLMScorer
from services.ranker.pipeline import RankingPipeline
from services.ranker.retriever.live import LiveRetriever
from services.ranker.serving.batching import MicroBatcher


@dataclass
class ServingModels:
    model_dir: Path
    retriever_dir: Path | None
    metadata: RankerMetadata
    pipeline: RankingPipeline
    batcher: MicroBatcher
    retriever: LiveRetriever | None
    scorer_health: Callable[[], Awaitable[None]] | None  # None: in-process, ready once loaded
    requests: int = field(default=0)  # in flight on this unit

    def __post_init__(self) -> None:
        if self.pipeline.fusion is not None and self.retriever is None:
            raise ValueError("a fusing pipeline needs the retriever")
        self.fallback = self.pipeline.fallback()
        # Everything a cached answer depends on from the models: the checkpoint, and the retriever (it fuses,
        # or orders the fallback).
        self.version = self.pipeline.version + ("" if self.retriever is None else f"+{self.retriever.version}")

    def start(self, on_batch: Callable[[int], None]) -> None:
        self.batcher.on_batch = on_batch
        self.batcher.start()

    async def retire(self) -> None:
        """Close once the requests that took this unit before it was replaced are done."""
        while self.requests:
            await asyncio.sleep(0.05)
        await self.batcher.close()


def load_models(
    settings: Settings, dataset: ProcessedDataset, model_dir: Path, retriever_dir: Path | None
) -> ServingModels:
    """Load (and check against the dataset) a ranker checkpoint and its retriever; nothing is started."""
    metadata = RankerMetadata.load(model_dir)
    if (metadata.dataset, metadata.data_hash) != (dataset.name, dataset.manifest.data_hash):
        raise ModelError(
            f"{model_dir} was trained on {metadata.dataset} {metadata.data_hash[:12]}, but the served data is "
            f"{dataset.name} {dataset.manifest.data_hash[:12]}: user and item ids would not match; serve the "
            "data the checkpoint was trained on"
        )
    fused = settings.fusion and metadata.fusion is not None and metadata.fusion.weight > 0
    if fused and retriever_dir is None:
        raise ConfigError(
            f"{model_dir} fuses its scores with the retriever's (weight {metadata.fusion.weight:.2f}, "  # type: ignore[union-attr]
            "chosen on val): give the retriever run with --retriever (KGRANK_RETRIEVER_DIR), or serve it unfused "
            "with --no-fusion (KGRANK_FUSION=false)"
        )
    # A retriever given is loaded (and checked) even when nothing fuses: it sets the history length for
    # paths, picks candidates for requests without them, and is the fallback order when the scorer fails.
    retriever = None if retriever_dir is None else LiveRetriever(retriever_dir, dataset)
    if settings.scorer == "vllm":
        # One or more servers (comma-separated); one that fails sits out as long as the whole scorer would.
        remote = AsyncVLLMScorer(
            settings.vllm_url,
            metadata,
            model=settings.vllm_model,
            timeout_s=settings.scorer_timeout_s,
            retries=1,
            cool_off_s=settings.retry_after_s,
        )
        # HTTP calls wait on the server, not on this CPU: several batches may be in flight.
        batcher = MicroBatcher(remote.score, workers=4, on_close=remote.close, **_batching(settings))
        health = remote.ping
        tokenizer = load_tokenizer(model_dir)
    else:
        local = TransformersScorer(model_dir, batch_size=settings.batch_size)
        # One forward pass at a time, off the event loop; torch already uses every core.
        batcher = MicroBatcher(local.score, workers=1, **_batching(settings))
        health = None
        tokenizer = local.tokenizer
    # The scorer is the batcher (serving sends prompts through it); the pipeline does every other stage.
    pipeline = RankingPipeline.from_checkpoint(model_dir, scorer=None, tokenizer=tokenizer, fused=fused)
    return ServingModels(model_dir, retriever_dir, metadata, pipeline, batcher, retriever, health)


def _batching(settings: Settings) -> dict[str, Any]:
    return {
        "max_batch": settings.batch_size,
        "wait_s": settings.batch_wait_ms / 1000,
        "timeout_s": settings.scorer_timeout_s,
    }
