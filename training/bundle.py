"""Everything `kgrank serve` needs, trained in one go: retriever → preference module → LLM ranker.

The demo and the API tests build their models with this; the CLI's `kgrank train …` commands do the
same steps one at a time with every option exposed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from services.core.atomic import atomic_directory
from services.graph_loader.dataset import ProcessedDataset
from services.ranker.context import RANKING_PATHS, GraphContext
from services.ranker.llm.metadata import METADATA_FILE
from services.ranker.paths.models import PathSource
from training.config import TINY, PreferenceConfig, RankerConfig, RetrieverConfig
from training.preference import train_preference
from training.ranker import train_ranker
from training.ranking_data import ranking_data
from training.retriever import train_retriever

BUNDLE_MARKERS = (f"ranker/{METADATA_FILE}", "retriever/checkpoint.pt")  # what every bundle holds


@dataclass(frozen=True)
class BundleConfig:
    retriever: RetrieverConfig
    preference: PreferenceConfig
    ranker: RankerConfig
    train_examples: int
    seed: int = 0


def quick_config(train_examples: int = 600, *, base_model: str = TINY) -> BundleConfig:
    """6 LRURec epochs (a fixed count, not a time budget, so every machine trains the same model), the
    preference module, and a short LLM fine-tune: a few minutes on 2 cores for ml-latest-small with the tiny
    model (the demo's); with a real base model the prompt recipe of the SmolLM2 results (10 history items,
    768 tokens, lr 5e-4, one epoch), about 1.3 s per training example on 2 cores, far less on a GPU."""
    ranker = (
        RankerConfig(epochs=2, eval_every=50, budget_tokens=768)
        if base_model == TINY
        else RankerConfig(base_model=base_model, history_items=10, budget_tokens=768, lr=5e-4, eval_every=25)
    )
    return BundleConfig(
        retriever=RetrieverConfig(model="lrurec", max_epochs=6, patience=5),
        preference=PreferenceConfig(max_epochs=15, patience=4),
        ranker=ranker,
        train_examples=train_examples,
    )


@dataclass(frozen=True)
class Bundle:
    retriever: Path  # run folder with val/test candidates
    preference: Path
    ranker: Path  # the checkpoint to serve (KGRANK_MODEL_DIR)
    preference_val_ndcg10: float
    preference_untrained_val_ndcg10: float
    ranker_val_ndcg10: float


def train_bundle(
    dataset: ProcessedDataset,
    source: PathSource,
    config: BundleConfig,
    out: Path,
    *,
    cache_dir: Path,
    progress: bool = True,
) -> Bundle:
    # One swap for the three folders: a run killed mid-way never leaves a new retriever beside an old ranker.
    with atomic_directory(out, markers=BUNDLE_MARKERS) as staging:
        retriever_dir, preference_dir, ranker_dir = staging / "retriever", staging / "preference", staging / "ranker"
        train_retriever(dataset, config.retriever, retriever_dir, progress=progress)
        data = ranking_data(
            dataset,
            GraphContext(dataset, source),
            retriever_run=retriever_dir,
            train_examples=config.train_examples,
            seed=config.seed,
            candidates="retrieved",  # what evaluation and serving hand the rankers (best on val)
            path_config=RANKING_PATHS,
            cache_dir=cache_dir,
            progress=progress,
        )
        preference = train_preference(
            dataset,
            config.preference,
            train=data.train,
            val=data.val,
            out=preference_dir,
            retriever="retriever",
            progress=progress,
        )
        ranker = train_ranker(
            dataset,
            config.ranker,
            train=data.train,
            val=data.val,
            out=ranker_dir,
            preference_dir=preference_dir,
            retriever="retriever",
            progress=progress,
        )
    return Bundle(
        retriever=out / "retriever",
        preference=out / "preference",
        ranker=out / "ranker",
        preference_val_ndcg10=preference.best_val_ndcg10,
        preference_untrained_val_ndcg10=preference.untrained_val_ndcg10,
        ranker_val_ndcg10=ranker.best_val_ndcg10,
    )
