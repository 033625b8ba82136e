"""The vLLM client against response bodies shaped as vLLM's completions protocol defines them.

The bodies below follow `CompletionResponse` / `CompletionLogProbs` of vllm/entrypoints/openai/completion/
protocol.py with `return_tokens_as_token_ids`; they were written from that schema, not captured from a
server (no GPU here), and are to be replaced by captured ones when a GPU machine runs vLLM.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import numpy as np
import pytest

from services.core.errors import ScorerError
from services.ranker.llm.metadata import RankerMetadata
from services.ranker.llm.vllm import AsyncVLLMScorer, VLLMScorer
from services.ranker.prompt import PromptConfig

LETTER_IDS = list(range(300, 320))


def metadata() -> RankerMetadata:
    return RankerMetadata(
        prompt_format_version=1,
        letter_token_ids=LETTER_IDS,
        eos_token_id=2,
        dataset="d",
        data_hash="h",
        base_model="tiny",
        path_strategy="none",
        prompt=PromptConfig(),
        kgrank_version="0",
    )


def body(logprobs_per_prompt: list[dict[int, float]]) -> dict:
    choices = []
    for index, logprobs in enumerate(logprobs_per_prompt):
        best = max(logprobs, key=logprobs.__getitem__)
        choices.append(
            {
                "index": index,
                "text": "B",
                "finish_reason": "length",
                "stop_reason": None,
                "logprobs": {
                    "text_offset": [0],
                    "token_logprobs": [logprobs[best]],
                    "tokens": [f"token_id:{best}"],
                    "top_logprobs": [{f"token_id:{k}": v for k, v in logprobs.items()}],
                },
            }
        )
    return {
        "id": "cmpl-1",
        "object": "text_completion",
        "created": 1,
        "model": "kgrank-ranker",
        "choices": choices,
        "usage": {"prompt_tokens": 10, "total_tokens": 11, "completion_tokens": 1},
    }


class _Blocking:
    """The async client behind the sync client's interface, so every test runs against both."""

    def __init__(self, handler) -> None:
        self._handler = handler

    def score(self, prompts: list[str], counts: list[int]) -> list[np.ndarray]:
        async def run() -> list[np.ndarray]:
            client = AsyncVLLMScorer(
                "http://vllm.test", metadata(), transport=httpx.MockTransport(self._handler), retries=2
            )
            try:
                return await client.score(prompts, counts)
            finally:
                await client.close()

        return asyncio.run(run())


@pytest.fixture(params=["sync", "async"])
def scorer_with(request: pytest.FixtureRequest):
    if request.param == "async":
        return _Blocking
    return lambda handler: VLLMScorer("http://vllm.test", metadata(), transport=httpx.MockTransport(handler), retries=2)


def test_request_asks_for_exactly_the_trained_letter_ids(scorer_with) -> None:
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200, json=body([{i: -5.0 + 0.1 * n for n, i in enumerate(LETTER_IDS[:3])}] * 2))

    scores = scorer_with(handler).score(["p1", "p2"], [3, 2])
    payload = seen[0]
    assert payload["logprob_token_ids"] == LETTER_IDS[:3] == payload["allowed_token_ids"]
    assert payload["max_tokens"] == 1 and payload["return_tokens_as_token_ids"] is True
    assert payload["prompt"] == ["p1", "p2"] and payload["logprobs"] == 3
    assert [s.tolist() for s in scores] == [pytest.approx([-5.0, -4.9, -4.8]), pytest.approx([-5.0, -4.9])]


def test_choices_are_matched_by_index(scorer_with) -> None:
    first, second = {LETTER_IDS[0]: -1.0, LETTER_IDS[1]: -2.0}, {LETTER_IDS[0]: -3.0, LETTER_IDS[1]: -0.5}
    reply = body([first, second])
    reply["choices"].reverse()
    scores = scorer_with(lambda request: httpx.Response(200, json=reply)).score(["a", "b"], [2, 2])
    assert np.argmax(scores[0]) == 0 and np.argmax(scores[1]) == 1


def test_missing_letters_are_an_error_not_a_partial_ranking(scorer_with) -> None:
    # An old server that ignores logprob_token_ids and reports raw top-k logprobs over the whole vocabulary.
    reply = body([{LETTER_IDS[0]: -1.0, 17: -0.2}])
    with pytest.raises(ScorerError, match="1 of 2 letters: start it with --logprobs-mode processed_logprobs"):
        scorer_with(lambda request: httpx.Response(200, json=reply)).score(["a"], [2])


def test_retries_server_errors_then_succeeds(scorer_with) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) < 3:
            return httpx.Response(503, text="busy")
        return httpx.Response(200, json=body([{LETTER_IDS[0]: -0.1}]))

    assert scorer_with(handler).score(["a"], [1])[0].tolist() == pytest.approx([-0.1])
    assert len(calls) == 3


def test_client_errors_are_not_retried_and_outages_are_named(scorer_with) -> None:
    calls = []

    def bad_request(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(400, json={"error": "bad"})

    with pytest.raises(ScorerError, match="vLLM answered 400"):
        scorer_with(bad_request).score(["a"], [1])
    assert len(calls) == 1

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(ScorerError, match=r"cannot reach vLLM at http://vllm\.test"):
        scorer_with(down).score(["a"], [1])


def test_a_timeout_is_not_retried(scorer_with) -> None:
    calls = []

    def stalled(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(ScorerError, match=r"vLLM at http://vllm\.test did not answer in time \(ReadTimeout\)"):
        scorer_with(stalled).score(["a"], [1])
    assert len(calls) == 1


def test_malformed_bodies(scorer_with) -> None:
    with pytest.raises(ScorerError, match="choices for 2 prompts"):
        scorer_with(lambda r: httpx.Response(200, json=body([{LETTER_IDS[0]: -1.0}]))).score(["a", "b"], [1, 1])
    with pytest.raises(ScorerError, match="unexpected vLLM response"):
        scorer_with(lambda r: httpx.Response(200, json={"nothing": 1})).score(["a"], [1])
