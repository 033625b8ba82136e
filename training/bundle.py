"""Everything `kgrank serve` needs, trained in one go: retriever → preference module → tiny LLM ranker.

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
from training.config import PreferenceConfig, RankerConfig, RetrieverConfig
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


def quick_config(train_examples: int = 600) -> BundleConfig:
    """A few minutes on 2 cores for ml-latest-small (the demo's): 6 LRURec epochs (a fixed count, not a time
    budget, so every machine trains the same model) and a short tiny-LLM fine-tune."""
    return BundleConfig(
        retriever=RetrieverConfig(model="lrurec", max_epochs=6, patience=5),
        preference=PreferenceConfig(max_epochs=15, patience=4),
        ranker=RankerConfig(epochs=2, eval_every=50, budget_tokens=768),
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
            candidates="random",
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
