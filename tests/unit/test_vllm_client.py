"""The vLLM client against response bodies shaped as vLLM's completions protocol defines them, and its
balancing and failover over several endpoints against fake vLLM servers (support/fake_vllm.py) behind
proxies that can cut them off.

The bodies below follow `CompletionResponse` / `CompletionLogProbs` of vllm/entrypoints/openai/completion/
protocol.py with `return_tokens_as_token_ids`; they were written from that schema, not captured from a
server (no GPU here), and are to be replaced by captured ones when a GPU machine runs vLLM.
"""

from __future__ import annotations

import asyncio
import json
import time
import typing
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import httpx
import numpy as np
import pytest

from kgrank.evaluate_cli import evaluate
from services.core.errors import ConfigError, ScorerError
from services.ranker.llm.metadata import RankerMetadata
from services.ranker.llm.tiny_config import TinyLlamaConfig
from services.ranker.llm.vllm import AsyncVLLMScorer, VLLMScorer, vllm_base_urls
from services.ranker.prompt import TEMPLATE, PromptConfig
from support.fake_vllm import FakeVLLM
from support.proxy import ToggleProxy

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

    with pytest.raises(ScorerError, match=r"vLLM at http://vllm\.test answered 400"):
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
    with pytest.raises(ScorerError, match=r"unexpected vLLM response from http://vllm\.test"):
        scorer_with(lambda r: httpx.Response(200, text="<html>proxy error</html>")).score(["a"], [1])


# -- several endpoints -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "entry 1 is empty"),
        ("http://a:8000,,http://b:8000", "entry 2 is empty"),
        ("http://a:8000,", "entry 2 is empty"),
        ("http://a:8000,http://A:8000/", "names http://A:8000/ twice"),
        ("http://a,http://a:80", "names http://a:80 twice"),
        ("a.example:8000", "'a.example:8000' is not an http"),
        ("ftp://a.example", "'ftp://a.example' is not an http"),
        ("http://", "'http://' is not an http"),
        ("http://a:8000/?model=x", "is not an http"),
        ("http://a:eighty", "Port could not be cast"),
    ],
)
def test_bad_url_lists_are_refused_with_the_entry_named(value: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        vllm_base_urls(value)
    with pytest.raises(ConfigError, match=problem):  # the scorers parse the setting the same way
        VLLMScorer(value, metadata())


def test_url_lists_keep_their_order_without_blanks_or_trailing_slashes() -> None:
    assert vllm_base_urls(" http://a:8000/ , https://b.example/v ,http://a:8001") == (
        "http://a:8000",
        "https://b.example/v",
        "http://a:8001",
    )
    assert vllm_base_urls("http://127.0.0.1:8000") == ("http://127.0.0.1:8000",)


def test_evaluate_says_it_takes_a_url_list() -> None:
    option = typing.get_type_hints(evaluate, include_extras=True)["vllm_url"].__metadata__[0]
    assert "comma-separated" in option.help


def test_the_turn_skips_a_failed_endpoint_and_the_others_share_the_load() -> None:
    hosts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        hosts.append(request.url.host)
        if request.url.host == "b.test":
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json=body([{LETTER_IDS[0]: -0.1}]))

    scorer = VLLMScorer(
        "http://a.test,http://b.test,http://c.test", metadata(), transport=httpx.MockTransport(handler), cool_off_s=60
    )
    try:
        for _ in range(6):
            scorer.score(["p"], [1])
    finally:
        scorer.close()
    # b fails once and hands its request to c; from then on a and c alternate and b is never asked.
    assert hosts == ["a.test", "b.test", "c.test", "c.test", "a.test", "c.test", "a.test"]


def tiny_checkpoint(folder: Path) -> Path:
    """An untrained tiny ranker: real weights and tokenizer for the fake servers to score with."""
    from services.ranker.llm.tiny import build_tiny_llama
    from services.ranker.llm.tokenizer import answer_token_ids, build_bpe_tokenizer

    tokenizer = build_bpe_tokenizer([TEMPLATE.format(instruction="Rank", input="A. Heat (1995)")] * 20, vocab_size=600)
    size = TinyLlamaConfig(vocab_size=600, hidden_size=32, layers=1, heads=2, max_positions=256)
    build_tiny_llama(tokenizer, size, seed=1).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    update = {"letter_token_ids": answer_token_ids(tokenizer), "eos_token_id": tokenizer.eos_token_id}
    metadata().model_copy(update=update).save(folder)
    return folder


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("ranker"))


@dataclass
class Endpoint:
    """A fake vLLM behind a proxy that can cut it off as if its process had died."""

    vllm: FakeVLLM
    proxy: ToggleProxy

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.proxy.port}"


@pytest.fixture
def pair(checkpoint: Path) -> Iterator[tuple[Endpoint, Endpoint]]:
    with ExitStack() as stack:
        endpoints = []
        for _ in range(2):
            vllm = FakeVLLM(checkpoint)
            port = urlparse(stack.enter_context(vllm.serving())).port
            assert port is not None
            endpoints.append(Endpoint(vllm, stack.enter_context(ToggleProxy(port))))
        yield endpoints[0], endpoints[1]


class CountingTransport(httpx.AsyncBaseTransport):
    """The real network, counting the requests sent to each port: the attempts on an endpoint, those that
    found no server to answer included."""

    def __init__(self) -> None:
        self._network = httpx.AsyncHTTPTransport()
        self.attempts: Counter[int] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.attempts[request.url.port or 80] += 1
        return await self._network.handle_async_request(request)

    async def aclose(self) -> None:
        await self._network.aclose()


@dataclass
class Balanced:
    scorer: VLLMScorer
    network: CountingTransport

    def attempts(self, endpoint: Endpoint) -> int:
        return self.network.attempts[endpoint.proxy.port]


@pytest.fixture
def balanced(checkpoint: Path, pair: tuple[Endpoint, Endpoint]):
    """`balanced(**options)`: a scorer over both endpoints of `pair`, closed after the test."""
    scorers: list[VLLMScorer] = []

    def build(**options: object) -> Balanced:
        network = CountingTransport()
        urls = ",".join(endpoint.url for endpoint in pair)
        scorer = VLLMScorer(urls, RankerMetadata.load(checkpoint), transport=network, **options)
        scorers.append(scorer)
        return Balanced(scorer, network)

    yield build
    for scorer in scorers:
        scorer.close()


PROMPT = TEMPLATE.format(instruction="Rank", input="A. Heat (1995)")


def test_two_endpoints_take_turns_and_score_alike(pair: tuple[Endpoint, Endpoint], balanced) -> None:
    first, second = pair
    client = balanced()
    scores = []
    for expected in ((1, 0), (1, 1), (2, 1), (2, 2)):
        scores.append(client.scorer.score([PROMPT], [3])[0])
        assert (first.vllm.completions, second.vllm.completions) == expected
    assert all(np.array_equal(s, scores[0]) for s in scores) and scores[0].shape == (3,)


def test_a_stopped_endpoint_is_skipped_during_its_cool_off(pair: tuple[Endpoint, Endpoint], balanced) -> None:
    first, second = pair
    client = balanced(cool_off_s=60)
    expected = client.scorer.score([PROMPT], [3])[0]
    first.proxy.cut()
    for _ in range(6):
        assert np.array_equal(client.scorer.score([PROMPT], [3])[0], expected)
    # Refused at its next turn (the third call), then left alone while the other answered.
    assert client.attempts(first) == 2 and first.vllm.completions == 1
    assert second.vllm.completions == 6


def test_an_endpoint_back_from_the_dead_is_used_after_its_cool_off(pair: tuple[Endpoint, Endpoint], balanced) -> None:
    first, second = pair
    client = balanced(cool_off_s=0.3)
    first.proxy.cut()
    client.scorer.score([PROMPT], [3])  # first refuses, second answers
    first.proxy.restore()
    time.sleep(0.4)
    for _ in range(2):
        client.scorer.score([PROMPT], [3])
    assert client.attempts(first) == 2 and first.vllm.completions == 1
    assert second.vllm.completions == 2


def test_a_503_fails_over_and_sits_out(pair: tuple[Endpoint, Endpoint], balanced) -> None:
    first, second = pair
    first.vllm.status = 503
    client = balanced(cool_off_s=60)
    for _ in range(3):
        client.scorer.score([PROMPT], [3])
    assert first.vllm.requests == 1 and second.vllm.completions == 3


def test_a_stalled_endpoint_fails_over_within_the_timeout(pair: tuple[Endpoint, Endpoint], balanced) -> None:
    first, second = pair
    first.vllm.delay_s = 3
    client = balanced(timeout_s=2)
    started = time.monotonic()
    client.scorer.score([PROMPT], [3])
    # The stalled one had its share (half of the 2 s), the other answered in the rest.
    assert 1 <= time.monotonic() - started < 2
    assert first.vllm.requests == 1 and second.vllm.completions == 1


def test_all_endpoints_down_is_a_scorer_error_within_the_timeout(pair: tuple[Endpoint, Endpoint], balanced) -> None:
    first, second = pair
    for endpoint in pair:
        endpoint.proxy.cut()
    client = balanced(timeout_s=2, retries=2)
    started = time.monotonic()
    with pytest.raises(ScorerError) as refused:
        client.scorer.score([PROMPT], [3])
    assert time.monotonic() - started < 2
    assert f"cannot reach vLLM at {first.url}" in refused.value.message
    assert f"cannot reach vLLM at {second.url}" in refused.value.message
    assert client.attempts(first) == client.attempts(second) == 3  # each round asks both, backing off between


def test_all_endpoints_stalled_is_a_scorer_error_within_the_timeout(pair: tuple[Endpoint, Endpoint], balanced) -> None:
    first, second = pair
    for endpoint in pair:
        endpoint.vllm.delay_s = 3
    client = balanced(timeout_s=1)
    started = time.monotonic()
    with pytest.raises(ScorerError, match="did not answer in time"):
        client.scorer.score([PROMPT], [3])
    assert time.monotonic() - started < 2  # the deadline (1 s) and some scheduling; never the 3 s of the stall
    assert first.vllm.requests == second.vllm.requests == 1  # a timeout is not retried: it had its time


def test_a_400_is_not_tried_elsewhere(pair: tuple[Endpoint, Endpoint], balanced) -> None:
    first, second = pair
    first.vllm.status = 400
    client = balanced()
    with pytest.raises(ScorerError, match=rf"vLLM at {first.url} answered 400"):
        client.scorer.score([PROMPT], [3])
    assert first.vllm.requests == 1 and second.vllm.requests == 0


def test_readiness_needs_one_endpoint_up(checkpoint: Path, pair: tuple[Endpoint, Endpoint]) -> None:
    first, second = pair

    async def ping() -> None:
        client = AsyncVLLMScorer(f"{first.url},{second.url}", RankerMetadata.load(checkpoint), timeout_s=2)
        try:
            await client.ping()
        finally:
            await client.close()

    first.proxy.cut()
    asyncio.run(ping())
    second.proxy.cut()
    with pytest.raises(ScorerError, match=rf"cannot reach vLLM at {first.url}.*; cannot reach vLLM at {second.url}"):
        asyncio.run(ping())
