"""Letter scores from a vLLM server (OpenAI-compatible `/v1/completions`), one generated token per prompt.

Each request asks for exactly the letter ids of the checkpoint's metadata:
- `logprob_token_ids` (vLLM versions that have it) returns their log-probabilities directly;
- `allowed_token_ids` + `logprobs` covers older servers, which must then run with
  `--logprobs-mode processed_logprobs` so the top log-probabilities are taken after the other tokens
  were masked, i.e. are the letters;
- `return_tokens_as_token_ids` makes the answer name tokens as "token_id:N", so nothing depends on how
  a letter is spelled by the tokenizer.
A response that lacks any requested letter is an error, never a silently partial ranking.

Serve a merged checkpoint with (see README):
    vllm serve models/ranker --served-model-name kgrank-ranker --logprobs-mode processed_logprobs
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from typing import Any

import httpx
import numpy as np

from services.core.errors import ScorerError
from services.ranker.llm.metadata import RankerMetadata

logger = logging.getLogger(__name__)
TOKEN_ID_PREFIX = "token_id:"  # noqa: S105 - a protocol marker, not a secret


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
    """httpx's async client with connection pooling, a timeout per request, and retries with backoff for
    connection errors, 429 and 5xx. Other answers are not retried, and neither is a timeout: it has used
    up the time the caller had (a stalled server would otherwise hold a request twice as long)."""

    def __init__(
        self,
        base_url: str,
        metadata: RankerMetadata,
        *,
        model: str = "kgrank-ranker",
        timeout_s: float = 10.0,
        retries: int = 2,
        batch_size: int = 16,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.metadata = metadata
        self._model = model
        self._retries = retries
        self._batch_size = batch_size
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=timeout_s,
            transport=transport,
            limits=httpx.Limits(max_connections=8, max_keepalive_connections=8),
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def ping(self) -> None:
        """vLLM's own health endpoint; ScorerError when it does not answer 200."""
        try:
            response = await self._client.get("/health")
        except httpx.TransportError as e:
            raise ScorerError(f"cannot reach vLLM at {self._client.base_url}: {e}") from e
        if response.status_code != 200:
            raise ScorerError(f"vLLM /health answered {response.status_code}")

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
        delay = 0.2
        for attempt in range(self._retries + 1):
            try:
                response = await self._client.post("/v1/completions", json=payload)
            except httpx.TimeoutException as e:
                raise ScorerError(f"vLLM at {self._client.base_url} did not answer in time ({type(e).__name__})") from e
            except httpx.TransportError as e:
                problem = f"cannot reach vLLM at {self._client.base_url}: {e}"
            else:
                if response.status_code == 200:
                    return response.json()
                problem = f"vLLM answered {response.status_code}: {response.text[:300]}"
                if response.status_code < 500 and response.status_code != 429:
                    raise ScorerError(problem)
            if attempt < self._retries:
                logger.warning("%s (retrying in %.1f s)", problem, delay)
                await asyncio.sleep(delay)
                delay *= 2
        raise ScorerError(problem)


class VLLMScorer:
    """The async client behind a blocking interface, for evaluation and benchmarks. It runs on an event
    loop of its own in a daemon thread, so the connection pool lives from one call to the next."""

    def __init__(self, base_url: str, metadata: RankerMetadata, **options: Any) -> None:
        self.metadata = metadata
        self._client = AsyncVLLMScorer(base_url, metadata, **options)
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
