"""Letter scores from a vLLM server (OpenAI-compatible `/v1/completions`), one generated token per prompt.

Each request asks for exactly the letter ids of the checkpoint's metadata:
- `logprob_token_ids` (vLLM versions that have it) returns their log-probabilities directly;
- `allowed_token_ids` + `logprobs` covers older servers, which must then run with
  `--logprobs-mode processed_logprobs` so the top log-probabilities are taken after the other tokens
  were masked, i.e. are the letters;
- `return_tokens_as_token_ids` makes the answer name tokens as "token_id:N", so nothing depends on how
  a letter is spelled by the tokenizer.
A response that lacks any requested letter is an error, never a silently partial ranking.

Several servers of the same checkpoint can share the load: requests take them in turn, and one that fails
(unreachable, too slow, 5xx) hands the request to the next and sits out a cool-off.

Serve a merged checkpoint with (see README):
    vllm serve models/ranker --served-model-name kgrank-ranker --logprobs-mode processed_logprobs
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np

from services.core.errors import ConfigError, ScorerError
from services.ranker.llm.metadata import RankerMetadata

logger = logging.getLogger(__name__)
TOKEN_ID_PREFIX = "token_id:"  # noqa: S105 - a protocol marker, not a secret
CONNECTIONS_PER_ENDPOINT = 8
FIRST_BACKOFF_S = 0.2


def vllm_base_urls(value: str) -> tuple[str, ...]:
    """The base URLs of a `KGRANK_VLLM_URL` / `--vllm-url` value: one, or several separated by commas."""
    urls: list[str] = []
    seen: set[tuple[str, str, int, str]] = set()
    for position, entry in enumerate(value.split(","), start=1):
        text = entry.strip()
        if not text:
            raise ConfigError(f"vLLM URL list {value!r}: entry {position} is empty (separate base URLs by one comma)")
        parts = urlsplit(text)
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as e:
            raise ConfigError(f"vLLM URL {text!r}: {e}") from e
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ConfigError(f"vLLM URL {text!r} is not an http(s) base URL such as http://127.0.0.1:8000")
        # http://Host:80/ and http://host name the same server: it would get twice the share of the load.
        server = (parts.scheme, parts.hostname, port, parts.path.rstrip("/"))
        if server in seen:
            raise ConfigError(f"vLLM URL list {value!r} names {text} twice")
        seen.add(server)
        urls.append(text.rstrip("/"))
    return tuple(urls)


class EndpointRotation:
    """Which vLLM to ask, in what order: the endpoints take turns, and one that just failed is skipped for
    `cool_off_s` while another is up. When every endpoint is cooling off they are all still tried, soonest
    back first: with nothing else to ask, a server that may have recovered beats certain failure (and a
    single server behaves as it would alone)."""

    def __init__(self, urls: tuple[str, ...], cool_off_s: float) -> None:
        self.urls = urls
        self._cool_off_s = cool_off_s
        self._turn = 0  # where the next request starts
        self._down_until: dict[str, float] = {}

    def order(self) -> list[str]:
        """The endpoints for the next request, first choice first; the turn moves past the first choice."""
        now = time.monotonic()
        rotated = self.urls[self._turn :] + self.urls[: self._turn]
        up = [url for url in rotated if self._down_until.get(url, 0.0) <= now]
        cooling = sorted((url for url in rotated if url not in up), key=self._down_until.__getitem__)
        order = up + cooling
        # Past the endpoint chosen, not merely one step on: the endpoints still up share the load evenly.
        self._turn = (self.urls.index(order[0]) + 1) % len(self.urls)
        return order

    def failed(self, url: str) -> None:
        self._down_until[url] = time.monotonic() + self._cool_off_s

    def answered(self, url: str) -> None:
        self._down_until.pop(url, None)


class _Deadline:
    """The time one request may take, shared out between the endpoints still to ask, so that one that
    stalls cannot use up the time another would have answered in."""

    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds

    def left(self) -> float:
        return self._end - time.monotonic()

    def share(self, endpoints: int) -> float:
        return self.left() / endpoints


class _EndpointError(Exception):
    """An endpoint failed in a way another could not have: the request goes to the next one."""

    def __init__(self, problem: str, *, retry: bool) -> None:
        super().__init__(problem)
        self.problem = problem
        self.retry = retry  # worth asking it again after a backoff (a timeout has had its share of time)


def completion_request(model: str, prompts: Sequence[str], letter_ids: Sequence[int]) -> dict[str, Any]:
    return {
        "model": model,
        "prompt": list(prompts),
        "max_tokens": 1,
        "temperature": 0.0,
        "logprobs": len(letter_ids),
        "logprob_token_ids": list(letter_ids),
        "allowed_token_ids": list(letter_ids),
        "return_tokens_as_token_ids": True,
    }


def letter_scores(body: dict[str, Any], letter_ids: Sequence[int], prompts: int) -> list[np.ndarray]:
    """Log-probabilities of `letter_ids` for each prompt, in prompt order, from a completions response."""
    try:
        choices = sorted(body["choices"], key=lambda choice: choice["index"])
        if len(choices) != prompts:
            raise ScorerError(f"vLLM returned {len(choices)} choices for {prompts} prompts")
        results = []
        for choice in choices:
            top = (choice.get("logprobs") or {}).get("top_logprobs") or []
            if not top or top[0] is None:
                raise ScorerError("vLLM returned no logprobs; is `logprobs` supported by this server?")
            by_id = {
                int(token[len(TOKEN_ID_PREFIX) :]): float(value)
                for token, value in top[0].items()
                if token.startswith(TOKEN_ID_PREFIX)
            }
            missing = [letter for letter in letter_ids if letter not in by_id]
            if missing:
                raise ScorerError(
                    f"vLLM returned log-probabilities for {len(letter_ids) - len(missing)} of {len(letter_ids)} "
                    "letters: start it with --logprobs-mode processed_logprobs (or use a vLLM with "
                    "logprob_token_ids)"
                )
            results.append(np.array([by_id[letter] for letter in letter_ids], dtype=np.float32))
    except (KeyError, TypeError, ValueError) as e:
        raise ScorerError(f"unexpected vLLM response: {e!r}") from e
    return results


class AsyncVLLMScorer:
    """httpx's async client with connection pooling over one or more vLLM endpoints (`base_urls`, comma-
    separated). A request goes to the endpoints in turn (EndpointRotation); a connection error, a timeout,
    429 or 5xx hands it to the next endpoint, and after every endpoint was asked, connection errors, 429 and
    5xx are retried with backoff, up to `retries` more rounds. Each request, backoffs included, ends within
    `timeout_s`. Other answers (4xx, a malformed body) would be the same from every server: they are errors
    at once."""

    def __init__(
        self,
        base_urls: str,
        metadata: RankerMetadata,
        *,
        model: str = "kgrank-ranker",
        timeout_s: float = 10.0,
        retries: int = 2,
        batch_size: int = 16,
        cool_off_s: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.metadata = metadata
        self._endpoints = EndpointRotation(vllm_base_urls(base_urls), cool_off_s)
        self._model = model
        self._timeout_s = timeout_s
        self._retries = retries
        self._batch_size = batch_size
        pool = CONNECTIONS_PER_ENDPOINT * len(self._endpoints.urls)
        self._client = httpx.AsyncClient(
            timeout=timeout_s,
            transport=transport,
            limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def ping(self) -> None:
        """Ready when any endpoint's health check answers 200 (scoring would fail over to it); ScorerError
        naming what each endpoint did otherwise."""
        deadline = _Deadline(self._timeout_s)
        problems = []
        for position, url in enumerate(self._endpoints.urls):
            try:
                async with asyncio.timeout(deadline.share(len(self._endpoints.urls) - position)):
                    response = await self._client.get(f"{url}/health")
            except (TimeoutError, httpx.TransportError) as e:
                problems.append(f"cannot reach vLLM at {url}: {e!r}")
                continue
            if response.status_code == 200:
                return
            problems.append(f"vLLM at {url}: /health answered {response.status_code}")
        raise ScorerError("; ".join(problems))

    async def score(self, prompts: Sequence[str], counts: Sequence[int]) -> list[np.ndarray]:
        results: list[np.ndarray] = []
        for start in range(0, len(prompts), self._batch_size):
            chunk = list(prompts[start : start + self._batch_size])
            chunk_counts = counts[start : start + len(chunk)]
            letters = self.metadata.letter_token_ids[: max(chunk_counts)]
            body = await self._post(completion_request(self._model, chunk, letters))
            scores = letter_scores(body, letters, len(chunk))
            results.extend(s[:count] for s, count in zip(scores, chunk_counts, strict=True))
        return results

    async def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        deadline = _Deadline(self._timeout_s)
        pending = self._endpoints.order()
        problems: dict[str, str] = {}  # the last failure of each endpoint asked, for the error
        delay = FIRST_BACKOFF_S
        for round_ in range(self._retries + 1):
            if round_:
                if deadline.left() <= delay:
                    break
                logger.warning("%s (retrying in %.1f s)", "; ".join(problems[url] for url in pending), delay)
                await asyncio.sleep(delay)
                delay *= 2
            again = []
            for position, url in enumerate(pending):
                if deadline.left() <= 0:
                    break
                try:
                    body = await self._ask(url, payload, deadline.share(len(pending) - position))
                except _EndpointError as failure:
                    self._endpoints.failed(url)
                    problems[url] = failure.problem
                    if failure.retry:
                        again.append(url)
                    if position + 1 < len(pending):
                        logger.warning("%s; failing over to %s", failure.problem, pending[position + 1])
                    continue
                self._endpoints.answered(url)
                return body
            pending = again
            if not pending:
                break
        raise ScorerError("; ".join(problems.values()))

    async def _ask(self, url: str, payload: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """One endpoint's completion; _EndpointError when another endpoint should be asked instead."""
        try:
            async with asyncio.timeout(timeout_s):
                response = await self._client.post(f"{url}/v1/completions", json=payload)
        except (TimeoutError, httpx.TimeoutException) as e:
            raise _EndpointError(f"vLLM at {url} did not answer in time ({type(e).__name__})", retry=False) from e
        except httpx.TransportError as e:
            raise _EndpointError(f"cannot reach vLLM at {url}: {e}", retry=True) from e
        if response.status_code == 200:
            try:
                return response.json()
            except ValueError as e:
                raise ScorerError(f"unexpected vLLM response from {url}: {e!r}") from e
        problem = f"vLLM at {url} answered {response.status_code}: {response.text[:300]}"
        if response.status_code < 500 and response.status_code != 429:
            raise ScorerError(problem)
        raise _EndpointError(problem, retry=True)


class VLLMScorer:
    """The async client behind a blocking interface, for evaluation and benchmarks. It runs on an event
    loop of its own in a daemon thread, so the connection pool lives from one call to the next."""

    def __init__(self, base_urls: str, metadata: RankerMetadata, **options: Any) -> None:
        self.metadata = metadata
        self._client = AsyncVLLMScorer(base_urls, metadata, **options)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="kgrank-vllm", daemon=True)
        self._thread.start()

    def score(self, prompts: Sequence[str], counts: Sequence[int]) -> list[np.ndarray]:
        return asyncio.run_coroutine_threadsafe(self._client.score(prompts, counts), self._loop).result()

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._client.close(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
