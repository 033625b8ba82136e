"""The one ranking pipeline: evaluation, serving and training all rank through it.

    paths → chosen paths → prompt → scores → fusion → order + explanations

- paths: a user's history, the candidates (retriever or request order) and the relation paths between
  them, fetched by the caller (a batch from the graph in evaluation and training, one async round trip
  in serving) and handed over as `RankingInput`s;
- chosen paths: every path scored by the strategy's selector (services/ranker/preference/select.py);
- prompt: the paper's prompt within the token budget, the best-scored paths that fit (LLM only);
- scores: one forward pass of letter log-probabilities, or the preference module's candidate scores;
- fusion: mixed with the retriever's scores at the weight chosen on val (services/ranker/fusion.py);
- order: best first, ties keep the given order; explanations: each candidate's best-scored paths.

`rank` runs every stage for a batch (evaluation, validation in training). Serving calls the same stage
methods one at a time, so that it can time and guard each and send the prompt through its batcher.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from services.core.errors import ModelError
from services.ranker.context import TaskContext
from services.ranker.fusion import FusionChoice, fuse
from services.ranker.llm.metadata import METADATA_FILE, RankerMetadata
from services.ranker.llm.scorer import LetterScorer
from services.ranker.llm.tokenizer import answer_token_ids
from services.ranker.paths.models import CandidateItem, RelationPath, UserPaths
from services.ranker.preference.scorer import PREFERENCE_FILE, PreferenceScorer
from services.ranker.preference.select import NoPaths, PathSelector, ShortestPaths, selector_for
from services.ranker.prompt import Prompt, PromptBuilder, PromptConfig, ScoredPath
from services.ranker.ranking import RankingTask
from services.ranker.strategy import PREFERENCE_STRATEGIES, PathStrategy

RankedBy = Literal["llm", "preference module"]


@dataclass(frozen=True)
class RankingInput:
    user: int  # dense user id; 0 = a user the models never saw
    paths: UserPaths  # history (oldest first), candidates in the given order, relation paths
    retriever_scores: np.ndarray | None = None  # one per candidate; needed when the pipeline fuses


@dataclass(frozen=True)
class Ranking:
    chosen: list[ScoredPath]  # every path with its selector score
    prompt: Prompt | None  # what the LLM read (None for the preference module alone)
    model_scores: np.ndarray  # letter log-probabilities, or the preference module's candidate scores
    scores: np.ndarray  # what orders the candidates: model_scores, fused with the retriever's when fusing
    order: np.ndarray  # candidate positions, best first
    retriever_scores: np.ndarray | None = None  # the retriever's, when it ran (fused in, or just reported)


@dataclass(frozen=True)
class Explanation:
    path: RelationPath
    score: float  # the selector's score: why this path is listed before the next
    shown_to_model: bool  # whether the prompt the scores came from contained it


@dataclass(frozen=True)
class RankedCandidate:
    item: CandidateItem
    score: float  # what ordered it
    ranker_score: float  # the LLM's or the preference module's own score
    retriever_score: float | None  # when the retriever ran
    rank: int  # 1 = best
    explanations: tuple[Explanation, ...]


def prompt_builder(tokenizer: object, config: PromptConfig) -> PromptBuilder:
    """A builder that measures and cuts text with the ranker's own tokenizer (BOS included)."""

    def count(text: str) -> int:
        return len(tokenizer(text)["input_ids"])  # type: ignore[operator]

    def truncate(text: str, tokens: int) -> str:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]  # type: ignore[operator]
        return text if len(ids) <= tokens else tokenizer.decode(ids[:tokens]).strip()  # type: ignore[attr-defined]

    return PromptBuilder(config, count_tokens=count, truncate_tokens=truncate)


class RankingPipeline:
    def __init__(
        self,
        *,
        ranked_by: RankedBy,
        strategy: PathStrategy,
        selector: PathSelector,
        builder: PromptBuilder | None = None,
        scorer: LetterScorer | None = None,
        preference: PreferenceScorer | None = None,
        fusion: FusionChoice | None = None,
        version: str = "",
    ) -> None:
        if ranked_by == "llm" and builder is None:
            raise ValueError("an LLM pipeline needs a prompt builder")
        if ranked_by == "preference module" and preference is None:
            raise ValueError("a preference-module pipeline needs the module")
        self.ranked_by = ranked_by
        self.strategy = strategy
        self.selector = selector
        self.builder = builder
        self.scorer = scorer  # None: prompts only (building training prompts)
        self.preference = preference
        self.fusion = fusion
        self.version = version
        # A prompt without relations still has its ranking explained, by the graph's shortest paths.
        self._explainer: PathSelector = ShortestPaths() if isinstance(selector, NoPaths) else selector

    # -- construction from saved models --------------------------------------------------------------

    @classmethod
    def from_checkpoint(
        cls, model_dir: Path, *, scorer: LetterScorer | None, tokenizer: object, fused: bool
    ) -> RankingPipeline:
        """A trained LLM ranker; `fused` mixes in the retriever at the weight saved with it."""
        metadata = RankerMetadata.load(model_dir)
        if answer_token_ids(tokenizer) != metadata.letter_token_ids:  # type: ignore[arg-type]
            raise ModelError(
                f"{model_dir}: its tokenizer encodes the answer letters as other token ids than the model was "
                "trained to produce (kgrank_ranker.json); the checkpoint's files do not belong together"
            )
        preference_file = model_dir / PREFERENCE_FILE
        module = PreferenceScorer.load(preference_file) if preference_file.is_file() else None
        if metadata.path_strategy in PREFERENCE_STRATEGIES and module is None:
            raise ModelError(f"{model_dir}: path strategy {metadata.path_strategy} but no {PREFERENCE_FILE}")
        return cls(
            ranked_by="llm",
            strategy=metadata.path_strategy,
            selector=selector_for(metadata.path_strategy, module),
            builder=prompt_builder(tokenizer, metadata.prompt),
            scorer=scorer,
            preference=module,
            fusion=_fusion(metadata.fusion, model_dir) if fused else None,
            version=checkpoint_version(model_dir, fused=fused),
        )

    @classmethod
    def from_preference(cls, path: Path, *, fused: bool) -> RankingPipeline:
        """The preference module alone: candidates by their pooled path scores."""
        module = PreferenceScorer.load(path)
        choice = module.meta.get("fusion")
        strategy: PathStrategy = "preference" if module.meta.get("trained") else "untrained-preference"
        return cls(
            ranked_by="preference module",
            strategy=strategy,
            selector=selector_for(strategy, module),
            preference=module,
            fusion=_fusion(None if choice is None else FusionChoice.model_validate(choice), path) if fused else None,
            version=_digest([path / PREFERENCE_FILE if path.is_dir() else path], fused=fused),
        )

    def fallback(self) -> RankingPipeline | None:
        """The preference module alone (with its own fusion when this pipeline fuses), for when the LLM is out."""
        if self.preference is None:
            return None
        choice = self.preference.meta.get("fusion")
        return RankingPipeline(
            ranked_by="preference module",
            strategy=self.strategy,
            selector=self.selector,
            preference=self.preference,
            fusion=FusionChoice.model_validate(choice) if self.fusion is not None and choice is not None else None,
            version=self.version,
        )

    def describe(self) -> str:
        """e.g. "llm (paths: preference) + retriever at 0.35": what ranks, and how it is fused."""
        what = "preference module" if self.ranked_by == "preference module" else f"llm (paths: {self.strategy})"
        return what if self.fusion is None else f"{what} + retriever at {self.fusion.weight:.2f}"

    # -- the stages ----------------------------------------------------------------------------------

    def choose(self, inputs: Sequence[RankingInput]) -> list[list[ScoredPath]]:
        """Every path of each input with its selector score (the prompt keeps the best that fit)."""
        return self._explainer.score([(item.user, item.paths) for item in inputs])

    def prompts(self, inputs: Sequence[RankingInput], chosen: Sequence[Sequence[ScoredPath]]) -> list[Prompt]:
        if self.builder is None:
            raise ValueError("this pipeline builds no prompts (the preference module alone)")
        shows_paths = not isinstance(self.selector, NoPaths)
        return [
            self.builder.build(item.paths.history, item.paths.candidates, scored if shows_paths else ())
            for item, scored in zip(inputs, chosen, strict=True)
        ]

    def model_scores(self, inputs: Sequence[RankingInput], prompts: Sequence[Prompt] | None) -> list[np.ndarray]:
        """The LLM's letter log-probabilities (one pass per prompt) or the preference module's scores."""
        if self.ranked_by == "preference module":
            assert self.preference is not None
            return self.preference.candidate_scores([(item.user, item.paths) for item in inputs])
        if self.scorer is None or prompts is None:
            raise ValueError("this pipeline has no scorer")
        return self.scorer.score([p.text for p in prompts], [len(item.paths.candidates) for item in inputs])

    def finish(
        self, item: RankingInput, chosen: list[ScoredPath], prompt: Prompt | None, model_scores: np.ndarray
    ) -> Ranking:
        """Fusion (when fusing) and the order: best first, ties keep the given order. The retriever's scores,
        when given, are carried along for the answer either way."""
        scores = np.asarray(model_scores, dtype=np.float64)
        retriever = None if item.retriever_scores is None else np.asarray(item.retriever_scores, dtype=np.float64)
        if self.fusion is not None:
            if retriever is None:
                raise ModelError("this ranking fuses the retriever's scores, but none were given")
            fused = fuse(scores, retriever, self.fusion.weight)
            return ordered_by(
                fused, chosen=chosen, prompt=prompt, model_scores=model_scores, retriever_scores=retriever
            )
        return ordered_by(scores, chosen=chosen, prompt=prompt, retriever_scores=retriever)

    def rank(self, inputs: Sequence[RankingInput]) -> list[Ranking]:
        chosen = self.choose(inputs)
        prompts = self.prompts(inputs, chosen) if self.ranked_by == "llm" else None
        scores = self.model_scores(inputs, prompts)
        return [
            self.finish(item, scored, None if prompts is None else prompts[n], model)
            for n, (item, scored, model) in enumerate(zip(inputs, chosen, scores, strict=True))
        ]


def ordered_by(
    scores: np.ndarray,
    *,
    chosen: list[ScoredPath],
    prompt: Prompt | None,
    model_scores: np.ndarray | None = None,
    retriever_scores: np.ndarray | None = None,
) -> Ranking:
    """A ranking by `scores`, best first; a stable sort keeps the given (retriever or request) order among ties."""
    values = np.asarray(scores, dtype=np.float64)
    return Ranking(
        chosen=chosen,
        prompt=prompt,
        model_scores=values if model_scores is None else np.asarray(model_scores, dtype=np.float64),
        scores=values,
        order=np.argsort(-values, kind="stable"),
        retriever_scores=retriever_scores,
    )


def explain(paths: UserPaths, ranking: Ranking, *, per_item: int) -> list[RankedCandidate]:
    """Candidates best first, each with its best-scored paths and whether the prompt showed them."""
    by_candidate: dict[str, list[ScoredPath]] = defaultdict(list)
    for item in sorted(ranking.chosen, key=lambda p: -p.score):  # stable: canonical path order breaks ties
        by_candidate[item.path.candidate].append(item)
    shown = set(ranking.prompt.paths) if ranking.prompt is not None else set()
    return [
        RankedCandidate(
            item=paths.candidates[position],
            score=float(ranking.scores[position]),
            ranker_score=float(ranking.model_scores[position]),
            retriever_score=None if ranking.retriever_scores is None else float(ranking.retriever_scores[position]),
            rank=rank,
            explanations=tuple(
                Explanation(p.path, p.score, p.path in shown)
                for p in by_candidate[paths.candidates[position].item_id][:per_item]
            ),
        )
        for rank, position in enumerate(ranking.order.tolist(), start=1)
    ]


def _fusion(choice: FusionChoice | None, where: Path) -> FusionChoice:
    if choice is None:
        raise ModelError(f"{where}: no fusion weight was chosen for this model (train it with a retriever run)")
    return choice


def checkpoint_version(model_dir: Path, *, fused: bool = False) -> str:
    """A short digest of what identifies a trained checkpoint: its metadata and training record."""
    return _digest([model_dir / name for name in (METADATA_FILE, "training.json", PREFERENCE_FILE)], fused=fused)


def _digest(files: Sequence[Path], *, fused: bool) -> str:
    digest = hashlib.sha256()
    for path in files:
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    if fused:
        digest.update(b"\0fused")
    return digest.hexdigest()[:16]


class PipelineRanker:
    """A pipeline as an evaluation ranker: paths from a task context, candidates back as dense ids."""

    def __init__(self, context: TaskContext, pipeline: RankingPipeline) -> None:
        self.name = pipeline.describe()
        self.context = context
        self.pipeline = pipeline

    def rankings(self, tasks: Sequence[RankingTask]) -> list[Ranking]:
        paths = self.context.fetch(tasks)
        return self.pipeline.rank(
            [RankingInput(task.user, p, task.retriever_scores) for task, p in zip(tasks, paths, strict=True)]
        )

    def rank(self, tasks: Sequence[RankingTask]) -> list[np.ndarray]:
        return [task.candidates[r.order] for task, r in zip(tasks, self.rankings(tasks), strict=True)]
