"""Prompt format and budgeting, measured in whitespace words so every expectation can be counted by hand."""

from __future__ import annotations

import pytest

from services.core.errors import RequestError
from services.ranker.paths import CandidateItem, HistoryItem, Hop, PathNode, RelationPath
from services.ranker.prompt import (
    INSTRUCTION_WITH_RELATIONS,
    INSTRUCTION_WITHOUT_RELATIONS,
    PromptBuilder,
    PromptConfig,
    ScoredPath,
)

HISTORY = [
    HistoryItem(item_id="1", title="Toy Story (1995)", rating=4.0, timestamp=1),
    HistoryItem(item_id="6", title="Heat (1995)", rating=5.0, timestamp=2),
    HistoryItem(item_id="7", title="Good, the Bad, the Weird, The (2008)", rating=None, timestamp=3),
]
CANDIDATES = [
    CandidateItem(item_id="858", title="The Godfather (1972)"),
    CandidateItem(item_id="50", title="The Usual Suspects (1995)"),
]


def path(origin: str, middle: str, label: str, rel: str, target: str, title: str) -> RelationPath:
    titles = {h.item_id: h.title for h in HISTORY}
    return RelationPath(
        nodes=(PathNode("Item", origin, titles[origin]), PathNode(label, middle), PathNode("Item", target, title)),
        hops=(Hop(rel, True), Hop(rel, False)),
    )


PACINO = path("6", "Al Pacino", "Actor", "HAS_ACTOR", "858", "The Godfather (1972)")
CRIME = path("6", "Crime", "Genre", "HAS_GENRE", "50", "The Usual Suspects (1995)")
YEAR = path("1", "1995", "Year", "RELEASED_IN", "50", "The Usual Suspects (1995)")


def words(text: str) -> int:
    return len(text.split())


def builder(**config: object) -> PromptBuilder:
    return PromptBuilder(
        PromptConfig(**config),  # type: ignore[arg-type]
        count_tokens=words,
        truncate_tokens=lambda text, n: " ".join(text.split()[:n]),
    )


def test_the_papers_format() -> None:
    prompt = builder(budget_tokens=1000).build(HISTORY, CANDIDATES, [ScoredPath(PACINO, 1.0), ScoredPath(YEAR, 0.5)])
    assert prompt.text == (
        f"### Instruction:\n{INSTRUCTION_WITH_RELATIONS}\n\n### Input:\n"
        "User history: (1) Toy Story (1995) \n (2) Heat (1995) \n (3) Good; \n"
        " Relations: The user rated the (1) Toy Story (1995) 4.0 stars. (1) Toy Story (1995) -> RELEASED_IN -> 1995"
        " -> RELEASED_IN -> (B) The Usual Suspects (1995) \n The user rated the (2) Heat (1995) 5.0 stars. (2) Heat"
        " (1995) -> HAS_ACTOR -> Al Pacino -> HAS_ACTOR -> (A) The Godfather (1972); \n"
        " Candidate pool: (A) The Godfather (1972) \n (B) The Usual Suspects (1995)\n\n### Response:\n"
    )
    assert prompt.paths == (YEAR, PACINO)  # prompt order: by history number
    assert prompt.tokens == words(prompt.text)


def test_without_relations() -> None:
    prompt = builder(relations=False).build(HISTORY, CANDIDATES, [ScoredPath(PACINO, 1.0)])
    assert INSTRUCTION_WITHOUT_RELATIONS in prompt.text
    assert "Relations" not in prompt.text
    assert prompt.paths == ()


def test_one_path_per_history_item_by_default() -> None:
    prompt = builder().build(HISTORY, CANDIDATES, [ScoredPath(CRIME, 0.2), ScoredPath(PACINO, 0.9)])
    assert prompt.paths == (PACINO,)
    prompt = builder(paths_per_history_item=2).build(
        HISTORY, CANDIDATES, [ScoredPath(CRIME, 0.2), ScoredPath(PACINO, 0.9)]
    )
    assert prompt.paths == (PACINO, CRIME)
    assert prompt.text.count("The user rated the (2) Heat") == 1  # the rating sentence opens the item's first line


def test_budget_drops_lowest_paths_first_then_oldest_history() -> None:
    paths = [ScoredPath(PACINO, 0.9), ScoredPath(YEAR, 0.1)]
    full = builder(budget_tokens=1000).build(HISTORY, CANDIDATES, paths)
    no_year = builder(budget_tokens=full.tokens - 1).build(HISTORY, CANDIDATES, paths)
    assert no_year.paths == (PACINO,) and len(no_year.history) == 3
    bare = builder(budget_tokens=1000, relations=True).build(HISTORY, CANDIDATES, [])
    shorter = builder(budget_tokens=bare.tokens - 1).build(HISTORY, CANDIDATES, paths)
    assert shorter.paths == ()
    assert [h.item_id for h in shorter.history] == ["6", "7"]  # the oldest item went
    assert "(1) Heat (1995)" in shorter.text
    for prompt, budget in ((no_year, full.tokens - 1), (shorter, bare.tokens - 1)):
        assert prompt.tokens <= budget
        assert INSTRUCTION_WITH_RELATIONS in prompt.text
        assert "(A) The Godfather (1972) \n (B) The Usual Suspects (1995)" in prompt.text


def test_instruction_and_candidates_are_never_cut() -> None:
    with pytest.raises(RequestError, match="the instruction and 2 candidates alone exceed the budget of 20 tokens"):
        builder(budget_tokens=20).build(HISTORY, CANDIDATES, [])
    with pytest.raises(RequestError, match=r"1\.\.20 candidates"):
        builder().build(HISTORY, [CandidateItem(item_id=str(i), title="x") for i in range(21)], [])


def test_titles_cut_at_the_first_comma_and_token_limit() -> None:
    assert builder().title("Good, the Bad, the Weird, The (2008)") == "Good"
    assert builder(title_tokens=2).title("The Lord of the Rings (2001)") == "The Lord"
