"""The Python client (kgrank.client) against the real API served by uvicorn: every method through the sync and the
async client, the API key, error bodies as typed exceptions, and a server that is not there."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from kgrank.client import (
    AsyncKgrankClient,
    KgrankAPIError,
    KgrankClient,
    KgrankClientError,
    KgrankConnectionError,
    calls,
)
from services.api.app import build_service, create_app
from services.api.local import free_port, serve_in_thread
from tests.api.conftest import Served, candidates_for, new_item_for, seen_items

KEY = "client-test-key-0123456789"


@pytest.fixture(scope="module")
def api_url(served: Served) -> Iterator[str]:
    settings = served.settings(api_key=KEY)
    with serve_in_thread(create_app(settings, service=build_service(settings))) as url:
        yield url


class AsyncDrivenFromSync:
    """An AsyncKgrankClient with KgrankClient's sync face, so each test below runs against both clients. One event
    loop for the client's whole life: its pooled connections belong to the loop that opened them."""

    def __init__(self, client: AsyncKgrankClient) -> None:
        self._client = client
        self._loop = asyncio.Runner()

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._client, name)
        return lambda *args, **kwargs: self._loop.run(method(*args, **kwargs))

    def close(self) -> None:
        self._loop.run(self._client.aclose())
        self._loop.close()


Connect = Callable[..., Any]  # (base_url, api_key=None) -> a KgrankClient, or an AsyncKgrankClient driven from sync


@pytest.fixture(params=["sync", "async"])
def connect(request: pytest.FixtureRequest) -> Iterator[Connect]:
    opened: list[KgrankClient | AsyncDrivenFromSync] = []

    def open_client(base_url: str, api_key: str | None = None) -> KgrankClient | AsyncDrivenFromSync:
        client = (
            KgrankClient(base_url, api_key=api_key)
            if request.param == "sync"
            else AsyncDrivenFromSync(AsyncKgrankClient(base_url, api_key=api_key))
        )
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        client.close()


def new_user() -> str:
    """A user no other test (nor the other client's run of this one) has seen: nothing cached for it yet."""
    return f"client-{uuid.uuid4().hex[:10]}"


def test_health_and_readiness(connect: Connect, api_url: str) -> None:
    client = connect(api_url, KEY)
    assert client.healthz().status == "ok"
    readiness = client.readyz()
    assert readiness.ready
    assert readiness.checks == {"graph": "ok", "cache": "ok", "scorer": "ok"}


def test_rank_given_candidates_then_again_from_the_cache(connect: Connect, api_url: str, served: Served) -> None:
    client = connect(api_url, KEY)
    user, candidates = new_user(), candidates_for(served, 1, 8)
    first = client.rank(user, candidates, top_k=3)
    assert (first.user_id, first.candidates_from, first.cached) == (user, "request", False)
    assert [item.rank for item in first.ranking] == [1, 2, 3]
    assert {item.item_id for item in first.ranking} <= set(candidates)
    again = client.rank(user, candidates, top_k=3)  # the server answers a hit with stored JSON: read it too
    assert again.cached
    assert again.ranking == first.ranking


def test_rank_without_candidates_lets_the_retriever_pick(connect: Connect, api_url: str, served: Served) -> None:
    answer = connect(api_url, KEY).rank(served.dataset.user_id(2), top_k=5, explain=False)
    assert answer.candidates_from == "retriever"
    assert len(answer.ranking) == 5
    assert all(item.explanations == [] for item in answer.ranking)
    assert not {item.item_id for item in answer.ranking} & seen_items(served, 2)


def test_record_an_interaction_once_per_event_id(connect: Connect, api_url: str, served: Served) -> None:
    client = connect(api_url, KEY)
    user, item, event = new_user(), served.dataset.items[0].id, uuid.uuid4().hex
    recorded = client.record_interaction(user, item, rating=4.5, timestamp=1_700_000_000, event_id=event)
    assert (recorded.event_id, recorded.user_id, recorded.item_id) == (event, user, item)
    assert (recorded.rating, recorded.timestamp, recorded.duplicate, recorded.user_version) == (
        4.5,
        1_700_000_000,
        False,
        1,
    )
    retried = client.record_interaction(user, item, rating=4.5, timestamp=1_700_000_000, event_id=event)
    assert (retried.duplicate, retried.user_version) == (True, 1)


def test_put_an_item_then_rank_it(connect: Connect, api_url: str, served: Served) -> None:
    client = connect(api_url, KEY)
    item_id, body = new_item_for(served, 1)
    created = client.put_item(item_id, **body)
    assert (created.item_id, created.title, created.attributes, created.created) == (
        item_id,
        body["title"],
        body["attributes"],
        True,
    )
    assert not client.put_item(item_id, "A Renamed Film (2026)", body["attributes"]).created
    ranked = client.rank(served.dataset.user_id(1), [item_id, *candidates_for(served, 1, 4)])
    assert {item.title for item in ranked.ranking if item.item_id == item_id} == {"A Renamed Film (2026)"}


def test_unknown_candidates_are_a_422_naming_them(connect: Connect, api_url: str, served: Served) -> None:
    with pytest.raises(KgrankAPIError) as refused:
        connect(api_url, KEY).rank(served.dataset.user_id(1), ["no-such-item", *candidates_for(served, 1, 2)])
    assert (refused.value.status, refused.value.item_ids, refused.value.endpoint) == (
        422,
        ["no-such-item"],
        "POST /rank",
    )
    assert "no-such-item" in refused.value.detail


def test_without_the_right_key_writes_and_ranking_are_refused(connect: Connect, api_url: str, served: Served) -> None:
    keyless, wrong = connect(api_url), connect(api_url, "not-the-key")
    item_id, body = new_item_for(served, 1)
    refusals = [
        lambda: keyless.record_interaction(new_user(), served.dataset.items[0].id),
        lambda: wrong.put_item(item_id, **body),
        lambda: keyless.rank(new_user(), candidates_for(served, 1, 2)),
    ]
    for refusal in refusals:
        with pytest.raises(KgrankAPIError) as refused:
            refusal()
        assert refused.value.status == 401
        assert refused.value.detail == "missing or wrong X-API-Key"
    assert keyless.healthz().status == "ok"  # the process' health stays open to all


def test_a_server_that_is_not_there_is_a_connection_error(connect: Connect) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(KgrankConnectionError, match=re.escape(f"GET /healthz: no answer from {url}/healthz")):
        connect(url).healthz()


def test_arguments_that_break_the_api_rules_are_refused_before_sending(connect: Connect) -> None:
    client = connect(f"http://127.0.0.1:{free_port()}")  # nothing listens: a request sent would fail otherwise
    with pytest.raises(ValidationError, match="white space"):
        client.rank(" padded ", ["1"])
    with pytest.raises(ValidationError, match="top_k"):
        client.rank("1", ["1"], top_k=0)
    with pytest.raises(ValidationError, match="empty"):
        client.put_item("", "A Title")


@pytest.mark.parametrize(
    ("answer", "status", "detail", "retry_after_s"),
    [
        (
            httpx.Response(429, headers={"Retry-After": "3"}, json={"error": "too many writes", "item_ids": None}),
            429,
            "too many writes",
            3.0,
        ),
        (httpx.Response(502, text="<html>Bad Gateway</html>"), 502, "<html>Bad Gateway</html>", None),
        (
            httpx.Response(503, headers={"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}),
            503,
            "Service Unavailable",
            None,
        ),
    ],
    ids=["kgrank-refusal", "proxy-page", "empty-with-date"],
)
def test_error_answers_become_api_errors(
    answer: httpx.Response, status: int, detail: str, retry_after_s: float | None
) -> None:
    # Answers a live server gives only under load or behind a proxy: read directly, as either client reads them.
    with pytest.raises(KgrankAPIError) as refused:
        calls.record_interaction("u", "i").read(answer)
    assert (refused.value.status, refused.value.detail, refused.value.retry_after_s) == (status, detail, retry_after_s)
    assert refused.value.endpoint == "POST /interactions"


def test_a_success_answer_that_is_not_the_model_is_a_client_error() -> None:
    with pytest.raises(KgrankClientError, match="GET /readyz answered 200 with a body that is not a Readiness"):
        calls.READYZ.read(httpx.Response(200, json={"status": "ok"}))


def test_with_closes_the_sync_client(api_url: str) -> None:
    with KgrankClient(api_url, api_key=KEY) as client:
        assert client.healthz().status == "ok"
    with pytest.raises(RuntimeError, match="closed"):
        client.healthz()


def test_async_with_closes_the_async_client(api_url: str) -> None:
    async def use_then_leave() -> AsyncKgrankClient:
        async with AsyncKgrankClient(api_url, api_key=KEY) as client:
            assert (await client.healthz()).status == "ok"
        return client

    client = asyncio.run(use_then_leave())
    with pytest.raises(RuntimeError, match="closed"):
        asyncio.run(client.healthz())
