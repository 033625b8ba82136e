"""Prompts as in the paper (Alpaca style, docs/method.md §5), fitted to a token budget of the real tokenizer.

When a prompt is too long, the lowest-scoring relation paths go first, then the oldest history items;
the instruction and the candidate list are never cut (a budget too small even for them is an error).
"""

from __future__ import annotations

import functools
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from services.core.errors import RequestError
from services.ranker.paths.models import CandidateItem, HistoryItem, RelationPath
from services.ranker.paths.render import format_path

PROMPT_FORMAT_VERSION = 1
MAX_CANDIDATES = 20
LETTERS = string.ascii_uppercase[:MAX_CANDIDATES]
TEMPLATE = "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
INSTRUCTION_WITH_RELATIONS = (
    "Given user history in chronological order and the relations, recommend an item from the candidate pool "
    "with its index letter."
)
INSTRUCTION_WITHOUT_RELATIONS = (
    "Given user history in chronological order, recommend an item from the candidate pool with its index letter."
)
SEPARATOR = " \n "


class PromptConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    budget_tokens: int = Field(default=2286, ge=16, description="prompt tokens, BOS included (paper: 2286 ML)")
    title_tokens: int = Field(default=32, ge=1, description="titles are cut at the first comma, then to this")
    history_items: int = Field(default=20, ge=1, le=200)
    relations: bool = True
    paths_per_history_item: int = Field(default=1, ge=1, description="the paper keeps one path per history item")


@dataclass(frozen=True)
class ScoredPath:
    """A relation path and how much it should matter (higher = kept first when the budget is tight)."""

    path: RelationPath
    score: float


@dataclass(frozen=True)
class Prompt:
    text: str
    tokens: int
    history: tuple[HistoryItem, ...]  # the items shown, numbered (1)…
    candidates: tuple[CandidateItem, ...]  # in letter order A…
    paths: tuple[RelationPath, ...]  # the relation paths shown, in prompt order


class PromptBuilder:
    """Builds prompts with `count_tokens` (the ranker's tokenizer, BOS included) as the budget's measure."""

    def __init__(
        self,
        config: PromptConfig,
        *,
        count_tokens: Callable[[str], int],
        truncate_tokens: Callable[[str, int], str],
    ) -> None:
        self.config = config
        self._count = count_tokens
        self._truncate = truncate_tokens

    @functools.lru_cache(maxsize=65536)  # noqa: B019 - lines repeat across a user's requests; builders live long
    def _line_cost(self, line: str) -> int:
        """Tokens a relation line adds to a prompt (its separator included, the BOS not)."""
        return self._count(SEPARATOR + line) - self._empty_tokens

    @functools.cached_property
    def _empty_tokens(self) -> int:
        return self._count("")

    @functools.lru_cache(maxsize=65536)  # noqa: B019 - titles repeat across prompts; builders live long
    def title(self, raw: str) -> str:
        """The paper's title cut: up to the first comma, then at most `title_tokens` tokens."""
        return self._truncate(raw.split(",")[0].strip(), self.config.title_tokens)

    def build(
        self,
        history: Sequence[HistoryItem],
        candidates: Sequence[CandidateItem],
        paths: Sequence[ScoredPath] = (),
    ) -> Prompt:
        if not 1 <= len(candidates) <= MAX_CANDIDATES:
            raise RequestError(f"a prompt holds 1..{MAX_CANDIDATES} candidates, got {len(candidates)}")
        shown = list(history[-self.config.history_items :])
        while True:
            prompt = self._fit_paths(shown, list(candidates), paths)
            if prompt is not None:
                return prompt
            if not shown:
                raise RequestError(
                    f"the instruction and {len(candidates)} candidates alone exceed the budget of "
                    f"{self.config.budget_tokens} tokens; raise it or shorten titles"
                )
            shown = shown[1:]  # the oldest history item goes

    def _fit_paths(
        self, history: list[HistoryItem], candidates: list[CandidateItem], paths: Sequence[ScoredPath]
    ) -> Prompt | None:
        """The best prompt with this history: paths added by score while the budget allows."""
        budget = self.config.budget_tokens
        base_tokens = self._count(self._render(history, candidates, []))
        if base_tokens > budget:
            return None
        chosen: list[ScoredPath] = []
        if self.config.relations:
            used = base_tokens
            per_item: dict[str, int] = {}
            positions = {item.item_id: n for n, item in enumerate(history, start=1)}
            for scored in sorted(paths, key=lambda p: -p.score):  # stable: canonical order breaks ties
                origin = scored.path.history_item
                if origin not in positions or per_item.get(origin, 0) >= self.config.paths_per_history_item:
                    continue
                line = self._relation_line(history, candidates, scored.path, first=origin not in per_item)
                cost = self._line_cost(line)
                if used + cost <= budget:
                    chosen.append(scored)
                    per_item[origin] = per_item.get(origin, 0) + 1
                    used += cost
        while True:
            shown = self._ordered(history, candidates, chosen)
            text = self._render(history, candidates, shown)
            tokens = self._count(text)
            if tokens <= budget:
                return Prompt(text, tokens, tuple(history), tuple(candidates), shown)
            # Joining pieces can merge tokens differently than counting them apart: drop the weakest path.
            chosen.remove(min(chosen, key=lambda p: p.score))

    @staticmethod
    def _ordered(
        history: list[HistoryItem], candidates: list[CandidateItem], chosen: list[ScoredPath]
    ) -> tuple[RelationPath, ...]:
        """Paths in prompt order: by history number, then candidate letter (stable otherwise)."""
        positions = {item.item_id: n for n, item in enumerate(history)}
        letters = {item.item_id: n for n, item in enumerate(candidates)}
        return tuple(
            sorted(
                (p.path for p in chosen),
                key=lambda path: (positions[path.history_item], letters[path.candidate]),
            )
        )

    def _render(self, history: list[HistoryItem], candidates: list[CandidateItem], paths: list[RelationPath]) -> str:
        history_text = SEPARATOR.join(f"({n}) {self.title(item.title)}" for n, item in enumerate(history, start=1))
        candidate_text = SEPARATOR.join(f"({LETTERS[n]}) {self.title(item.title)}" for n, item in enumerate(candidates))
        if not self.config.relations:
            return TEMPLATE.format(
                instruction=INSTRUCTION_WITHOUT_RELATIONS,
                input=f"User history: {history_text}; \n Candidate pool: {candidate_text}",
            )
        lines, seen = [], set()
        for path in paths:
            lines.append(self._relation_line(history, candidates, path, first=path.history_item not in seen))
            seen.add(path.history_item)
        relations = SEPARATOR.join(lines) if lines else "none"
        text = f"User history: {history_text}; \n Relations: {relations}; \n Candidate pool: {candidate_text}"
        return TEMPLATE.format(instruction=INSTRUCTION_WITH_RELATIONS, input=text)

    @staticmethod
    def _position(history: list[HistoryItem], item_id: str) -> int:
        return next(n for n, item in enumerate(history) if item.item_id == item_id)

    def _relation_line(
        self, history: list[HistoryItem], candidates: list[CandidateItem], path: RelationPath, *, first: bool
    ) -> str:
        """'The user rated the (3) Heat 4.0 stars. (3) Heat -> HAS_ACTOR -> Al Pacino -> … -> (B) …'.

        The rating sentence opens the first line of each history item only.
        """
        number = self._position(history, path.history_item) + 1
        letter = LETTERS[next(n for n, c in enumerate(candidates) if c.item_id == path.candidate)]
        line = format_path(
            path,
            origin=f"({number})",
            target=f"({letter})",
            name=lambda node: self.title(node.display) if node.title else node.display,
        )
        origin = history[number - 1]
        if first and origin.rating is not None:
            line = f"The user rated the ({number}) {self.title(origin.title)} {origin.rating:.1f} stars. {line}"
        return line
