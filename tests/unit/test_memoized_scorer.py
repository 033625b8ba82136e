"""Rankers built from one checkpoint share its forward passes within an evaluation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from services.ranker.llm.scorer import MemoizedScorer


class CountingScorer:
    def __init__(self) -> None:
        self.scored: list[str] = []

    def score(self, prompts: Sequence[str], counts: Sequence[int]) -> list[np.ndarray]:
        self.scored.extend(prompts)
        return [np.full(count, float(len(prompt))) for prompt, count in zip(prompts, counts, strict=True)]


def test_each_distinct_prompt_is_scored_once_and_answers_keep_their_order() -> None:
    inner = CountingScorer()
    memo = MemoizedScorer(inner)
    first = memo.score(["ab", "abc", "ab"], [2, 3, 2])
    assert inner.scored == ["ab", "abc"]
    assert [s.tolist() for s in first] == [[2.0, 2.0], [3.0, 3.0, 3.0], [2.0, 2.0]]
    again = memo.score(["abc", "abcd"], [3, 1])
    assert inner.scored == ["ab", "abc", "abcd"]
    assert [s.tolist() for s in again] == [[3.0, 3.0, 3.0], [4.0]]
    assert memo.score(["ab"], [1])[0].tolist() == [2.0]  # another count is another question
    assert inner.scored[-1] == "ab"
