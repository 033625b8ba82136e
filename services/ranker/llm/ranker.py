"""The LLM ranker: history and paths → chosen relation lines → prompt → one pass → order by letter score."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from transformers import PreTrainedTokenizerBase

from services.core.errors import ConfigError
from services.graph_loader.dataset import ProcessedDataset
from services.ranker.context import DatasetContext, TaskContext
from services.ranker.llm.metadata import RankerMetadata
from services.ranker.llm.scorer import LetterScorer
from services.ranker.preference.scorer import PREFERENCE_FILE, PreferenceScorer
from services.ranker.preference.select import NoPaths, PathSelector, PreferencePaths, ShortestPaths
from services.ranker.prompt import Prompt, PromptBuilder, PromptConfig
from services.ranker.ranking import RankingTask


def prompt_builder(tokenizer: PreTrainedTokenizerBase, config: PromptConfig) -> PromptBuilder:
    """A builder that measures and cuts text with the ranker's own tokenizer (BOS included)."""

    def count(text: str) -> int:
        return len(tokenizer(text)["input_ids"])

    def truncate(text: str, tokens: int) -> str:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        return text if len(ids) <= tokens else tokenizer.decode(ids[:tokens]).strip()

    return PromptBuilder(config, count_tokens=count, truncate_tokens=truncate)


def path_selector(metadata: RankerMetadata, model_dir: Path) -> PathSelector:
    if metadata.path_strategy == "none":
        return NoPaths()
    if metadata.path_strategy == "shortest":
        return ShortestPaths()
    return PreferencePaths(PreferenceScorer.load(model_dir / PREFERENCE_FILE))


class LLMRanker:
    def __init__(
        self,
        *,
        context: TaskContext,
        selector: PathSelector,
        builder: PromptBuilder,
        scorer: LetterScorer,
        name: str = "llm",
    ) -> None:
        self.name = name
        self._context = context
        self._selector = selector
        self._builder = builder
        self._scorer = scorer

    def prompts(self, tasks: Sequence[RankingTask]) -> list[Prompt]:
        paths = self._context.fetch(tasks)
        scored = self._selector.score([(task.user, p) for task, p in zip(tasks, paths, strict=True)])
        return [self._builder.build(p.history, p.candidates, chosen) for p, chosen in zip(paths, scored, strict=True)]

    def rank(self, tasks: Sequence[RankingTask]) -> list[np.ndarray]:
        prompts = self.prompts(tasks)
        scores = self._scorer.score([p.text for p in prompts], [len(task.candidates) for task in tasks])
        # A stable sort keeps the retriever's order among equal scores.
        return [task.candidates[np.argsort(-s, kind="stable")] for task, s in zip(tasks, scores, strict=True)]


def llm_ranker(
    model_dir: Path,
    dataset: ProcessedDataset,
    *,
    graph: TaskContext | None,
    scorer: LetterScorer,
    tokenizer: PreTrainedTokenizerBase,
    name: str = "llm",
) -> LLMRanker:
    """A ranker from a trained checkpoint; relation strategies need `graph`, "none" reads the dataset."""
    metadata = scorer.metadata
    if metadata.path_strategy == "none":
        context: TaskContext = DatasetContext(dataset, history_length=metadata.prompt.history_items)
    elif graph is None:
        raise ConfigError(f"{model_dir} shows relation paths ({metadata.path_strategy}): it needs a graph")
    else:
        context = graph
    return LLMRanker(
        context=context,
        selector=path_selector(metadata, model_dir),
        builder=prompt_builder(tokenizer, metadata.prompt),
        scorer=scorer,
        name=name,
    )
