"""Micro-batching: concurrent prompts share a scorer call; failures and timeouts reach every caller."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

import numpy as np
import pytest

from services.core.errors import ScorerError
from services.ranker.serving.batching import MicroBatcher


def scores_by_length(prompts: Sequence[str], counts: Sequence[int]) -> list[np.ndarray]:
    return [np.full(count, float(len(prompt))) for prompt, count in zip(prompts, counts, strict=True)]


async def _run(batcher: MicroBatcher, prompts: list[str]) -> list[np.ndarray | BaseException]:
    batcher.start()
    try:
        return await asyncio.gather(*(batcher.score(p, 3) for p in prompts), return_exceptions=True)
    finally:
        await batcher.close()


def test_concurrent_prompts_share_a_call_and_get_their_own_scores() -> None:
    calls: list[int] = []

    def score(prompts: Sequence[str], counts: Sequence[int]) -> list[np.ndarray]:
        calls.append(len(prompts))
        assert threading.current_thread() is not threading.main_thread()  # off the event loop
        return scores_by_length(prompts, counts)

    batcher = MicroBatcher(score, max_batch=4, wait_s=0.05, timeout_s=5)
    results = asyncio.run(_run(batcher, ["a" * n for n in range(1, 11)]))
    assert [r.tolist() for r in results] == [[float(n)] * 3 for n in range(1, 11)]
    assert sorted(calls, reverse=True) == [4, 4, 2] and batcher.batch_sizes == calls


def test_an_async_scorer_runs_on_the_loop() -> None:
    async def score(prompts: Sequence[str], counts: Sequence[int]) -> list[np.ndarray]:
        await asyncio.sleep(0)
        return scores_by_length(prompts, counts)

    closed = []

    async def close() -> None:
        closed.append(True)

    batcher = MicroBatcher(score, max_batch=8, wait_s=0.01, timeout_s=5, workers=2, on_close=close)
    results = asyncio.run(_run(batcher, ["xy", "xyz"]))
    assert [r.tolist() for r in results] == [[2.0] * 3, [3.0] * 3] and closed == [True]


def test_failures_and_timeouts_become_scorer_errors() -> None:
    def broken(prompts: Sequence[str], counts: Sequence[int]) -> list[np.ndarray]:
        raise RuntimeError("CUDA out of memory")

    results = asyncio.run(_run(MicroBatcher(broken, max_batch=4, wait_s=0.01, timeout_s=5), ["a", "b"]))
    assert all(isinstance(r, ScorerError) and "CUDA out of memory" in r.message for r in results)

    def slow(prompts: Sequence[str], counts: Sequence[int]) -> list[np.ndarray]:
        time.sleep(0.5)
        return scores_by_length(prompts, counts)

    started = time.perf_counter()
    (result,) = asyncio.run(_run(MicroBatcher(slow, max_batch=4, wait_s=0, timeout_s=0.1), ["a"]))
    assert isinstance(result, ScorerError) and "longer than 0.1 s" in result.message
    assert time.perf_counter() - started < 0.45


@pytest.mark.parametrize("wait_s", [0.0, 0.02])
def test_a_lone_prompt_is_scored_alone(wait_s: float) -> None:
    batcher = MicroBatcher(scores_by_length, max_batch=8, wait_s=wait_s, timeout_s=5)
    (result,) = asyncio.run(_run(batcher, ["abc"]))
    assert result.tolist() == [3.0] * 3 and batcher.batch_sizes == [1]


def test_prompts_whose_callers_gave_up_are_not_scored() -> None:
    scored: list[list[str]] = []

    def stalls_first(prompts: Sequence[str], counts: Sequence[int]) -> list[np.ndarray]:
        scored.append(list(prompts))
        if len(scored) == 1:
            time.sleep(0.5)
        return scores_by_length(prompts, counts)

    async def scenario() -> list[np.ndarray | BaseException]:
        batcher = MicroBatcher(stalls_first, max_batch=1, wait_s=0, timeout_s=0.2)
        batcher.start()
        try:
            # "a" stalls the only worker; "b" and "c" queue behind it and their callers give up.
            gave_up = await asyncio.gather(*(batcher.score(p, 1) for p in ("a", "b", "c")), return_exceptions=True)
            await asyncio.sleep(0.5)  # the stall ends
            return [*gave_up, await batcher.score("d", 1)]
        finally:
            await batcher.close()

    results = asyncio.run(scenario())
    assert all(isinstance(r, ScorerError) for r in results[:3]) and results[3].tolist() == [1.0]
    assert scored == [["a"], ["d"]]
