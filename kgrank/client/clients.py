"""The sync and the async client. Each method names its call in `calls` and sends it; building the request and
reading the answer happen there, once for both."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import httpx

from kgrank.client import calls
from kgrank.client.calls import Answer
from services.ranker.serving.contract import Health, InteractionResponse, ItemResponse, RankResponse, Readiness

DEFAULT_TIMEOUT_S = 30.0


class KgrankClient:
    """A kgrank API at `base_url`, e.g. `http://localhost:8080`. `api_key` is sent as X-API-Key (writes need it;
    so does ranking when the server has one). An error status raises `KgrankAPIError`, no answer within
    `timeout_s` or no server `KgrankConnectionError`. Close it (or use `with`) to release its connections."""

    def __init__(self, base_url: str, *, api_key: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self._http = httpx.Client(**calls.http_options(base_url, api_key=api_key, timeout_s=timeout_s))

    def rank(
        self, user_id: str, candidates: Sequence[str] | None = None, *, top_k: int | None = None, explain: bool = True
    ) -> RankResponse:
        """POST /rank: the candidates ranked for the user, with explanations; without candidates the server's
        retriever picks them."""
        return self._send(calls.rank(user_id, candidates, top_k=top_k, explain=explain))

    def record_interaction(
        self,
        user_id: str,
        item_id: str,
        *,
        rating: float | None = None,
        timestamp: int | None = None,
        event_id: str | None = None,
    ) -> InteractionResponse:
        """POST /interactions: append the event (once per `event_id`, so a retry with it is safe)."""
        return self._send(
            calls.record_interaction(user_id, item_id, rating=rating, timestamp=timestamp, event_id=event_id)
        )

    def put_item(self, item_id: str, title: str, attributes: Mapping[str, Sequence[str]] | None = None) -> ItemResponse:
        """PUT /items/{item_id}: create or replace an item of the living catalogue."""
        return self._send(calls.put_item(item_id, title, attributes))

    def healthz(self) -> Health:
        """GET /healthz: the process is up."""
        return self._send(calls.HEALTHZ)

    def readyz(self) -> Readiness:
        """GET /readyz: whether graph, cache and scorer are up (what is wrong only with the key)."""
        return self._send(calls.READYZ)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> KgrankClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _send(self, call: calls.Call[Answer]) -> Answer:
        request = call.request(self._http)
        try:
            response = self._http.send(request)
        except httpx.TransportError as e:
            raise call.unanswered(request, e) from e
        return call.read(response)


class AsyncKgrankClient:
    """`KgrankClient` for asyncio: the same methods, awaited; `aclose()` (or `async with`) releases it."""

    def __init__(self, base_url: str, *, api_key: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self._http = httpx.AsyncClient(**calls.http_options(base_url, api_key=api_key, timeout_s=timeout_s))

    async def rank(
        self, user_id: str, candidates: Sequence[str] | None = None, *, top_k: int | None = None, explain: bool = True
    ) -> RankResponse:
        return await self._send(calls.rank(user_id, candidates, top_k=top_k, explain=explain))

    async def record_interaction(
        self,
        user_id: str,
        item_id: str,
        *,
        rating: float | None = None,
        timestamp: int | None = None,
        event_id: str | None = None,
    ) -> InteractionResponse:
        return await self._send(
            calls.record_interaction(user_id, item_id, rating=rating, timestamp=timestamp, event_id=event_id)
        )

    async def put_item(
        self, item_id: str, title: str, attributes: Mapping[str, Sequence[str]] | None = None
    ) -> ItemResponse:
        return await self._send(calls.put_item(item_id, title, attributes))

    async def healthz(self) -> Health:
        return await self._send(calls.HEALTHZ)

    async def readyz(self) -> Readiness:
        return await self._send(calls.READYZ)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncKgrankClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _send(self, call: calls.Call[Answer]) -> Answer:
        request = call.request(self._http)
        try:
            response = await self._http.send(request)
        except httpx.TransportError as e:
            raise call.unanswered(request, e) from e
        return call.read(response)
