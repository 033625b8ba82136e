"""The API against a real Neo4j and a real Redis (fail in CI when absent), and with each of them gone."""

from __future__ import annotations

import socket
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from services.api.app import build_service, create_app
from services.api.local import serve_in_thread
from support.proxy import ToggleProxy
from tests.api.conftest import ClientFactory, Served, candidates_for, new_item_for, seen_items, serve_process


def _ranking(body: dict) -> list[tuple[str, float, list[str]]]:
    return [
        (item["item_id"], round(item["score"], 4), [e["cypher"] for e in item["explanations"]])
        for item in body["ranking"]
    ]


@pytest.mark.neo4j
def test_neo4j_and_embedded_serve_the_same_ranking_and_explanations(
    served: Served, client_for: ClientFactory, neo4j_served: dict[str, object]
) -> None:
    request = {"user_id": served.dataset.user_id(5), "candidates": candidates_for(served, 5, 12)}
    on_neo4j = client_for(**neo4j_served).post("/rank", json=request).json()
    embedded = client_for().post("/rank", json=request).json()
    assert on_neo4j["degraded"] == [] and on_neo4j["history_length"] == embedded["history_length"] == 20
    assert _ranking(on_neo4j) == _ranking(embedded)
    assert any(item["explanations"] for item in on_neo4j["ranking"])


@pytest.mark.neo4j
@pytest.mark.redis
def test_interaction_on_neo4j_moves_the_user_version_and_reaches_the_next_ranking(
    served: Served, client_for: ClientFactory, neo4j_served: dict[str, object], redis_url: str
) -> None:
    import redis

    client = client_for(**neo4j_served, redis_url=redis_url, open_writes=True)
    user = f"live-{uuid.uuid4().hex[:8]}"
    request = {"user_id": user, "candidates": candidates_for(served, 1, 6)}
    assert client.post("/rank", json=request).json()["cold_start"] is True
    assert client.post("/rank", json=request).json()["cached"] is True

    item = served.dataset.items[1]
    recorded = client.post("/interactions", json={"user_id": user, "item_id": item.id, "timestamp": 1_700_000_000})
    assert recorded.status_code == 200 and recorded.json()["user_version"] == 1

    after = client.post("/rank", json=request).json()
    assert after["cached"] is False and after["known_user"] is True and after["history_length"] == 1
    assert after["user_version"] == 1
    assert client.post("/rank", json=request).json()["cached"] is True

    keys = redis.Redis.from_url(redis_url).keys("kgrank:v2:*")
    assert keys and all(user.encode() not in key for key in keys)  # user ids are hashed into keys


@pytest.mark.neo4j
@pytest.mark.redis
def test_no_answer_marked_fresh_misses_an_acknowledged_interaction(
    served: Served, client_for: ClientFactory, neo4j_served: dict[str, object], redis_url: str, tmp_path: Path
) -> None:
    """Redis unreachable when the interaction arrives, the write taken by a second API process, the first
    restarted: every later answer marked fresh reflects the interaction."""
    user = f"fresh-{uuid.uuid4().hex[:8]}"
    request = {"user_id": user, "candidates": candidates_for(served, 1, 6)}
    redis = urlparse(redis_url)
    with ToggleProxy(redis.port or 6379) as redis_proxy:
        proxied = f"redis://127.0.0.1:{redis_proxy.port}{redis.path}"
        first = client_for(**neo4j_served, redis_url=proxied)
        assert first.post("/rank", json=request).json()["cached"] is False
        stale = first.post("/rank", json=request).json()
        assert stale["cached"] is True and stale["history_length"] == 0 and stale["user_version"] == 0

        password = neo4j_served["neo4j_password"]
        with serve_process(
            served,
            tmp_path / "second.log",
            neo4j_uri=str(neo4j_served["neo4j_uri"]),
            neo4j_password=password.get_secret_value() if password else "",  # type: ignore[attr-defined]
            redis_url=proxied,
            redis_timeout_s="0.3",
            open_writes="true",
        ) as second:
            redis_proxy.cut()
            item = served.dataset.items[2].id
            recorded = httpx.post(f"{second}/interactions", json={"user_id": user, "item_id": item}, timeout=30)
            assert recorded.status_code == 200 and recorded.json()["user_version"] == 1
            redis_proxy.restore()
            answers = {
                "first process": first.post("/rank", json=request).json(),
                "second process": httpx.post(f"{second}/rank", json=request, timeout=30).json(),
                "first restarted": client_for(**neo4j_served, redis_url=proxied).post("/rank", json=request).json(),
            }
    for where, answer in answers.items():
        assert answer["degraded"] == [], where
        assert (answer["user_version"], answer["history_length"]) == (1, 1), where
    assert answers["first process"]["cached"] is False


def test_redis_down_answers_uncached_and_says_so(served: Served, client_for: ClientFactory) -> None:
    client = client_for(redis_url="redis://127.0.0.1:9/0", redis_timeout_s=0.2, open_writes=True)
    request = {"user_id": served.dataset.user_id(6), "candidates": candidates_for(served, 6, 5)}
    for _ in range(2):
        body = client.post("/rank", json=request).json()
        assert body["degraded"] == ["cache"] and body["cached"] is False and body["model"]["ranked_by"] == "llm"
    recorded = client.post("/interactions", json={"user_id": request["user_id"], "item_id": request["candidates"][0]})
    assert recorded.status_code == 200  # the cache plays no part in a write
    assert client.get("/readyz").json()["degraded"] == ["cache"]


def test_neo4j_down_ranks_from_the_dataset_history_and_refuses_interactions(
    served: Served, client_for: ClientFactory
) -> None:
    client = client_for(neo4j_uri="bolt://127.0.0.1:9", neo4j_password="unused", neo4j_timeout_s=2, open_writes=True)
    request = {"user_id": served.dataset.user_id(7), "candidates": candidates_for(served, 7, 5)}
    body = client.post("/rank", json=request).json()
    assert body["degraded"] == ["graph"] and body["known_user"] is True and body["history_length"] == 20
    assert body["model"]["graph_version"] is None and body["model"]["ranked_by"] == "llm"
    assert body["user_version"] is None and all(item["explanations"] == [] for item in body["ranking"])
    refused = client.post("/interactions", json={"user_id": request["user_id"], "item_id": request["candidates"][0]})
    assert refused.status_code == 503 and refused.json()["error"] == "the knowledge graph is unavailable; retry later"
    assert int(refused.headers["Retry-After"]) >= 1
    assert client.get("/readyz").json()["degraded"] == ["graph"]


@pytest.mark.neo4j
def test_writes_fail_fast_while_neo4j_is_down(
    served: Served, client_for: ClientFactory, neo4j_served: dict[str, object]
) -> None:
    neo4j_port = urlparse(str(neo4j_served["neo4j_uri"])).port or 7687
    with ToggleProxy(neo4j_port) as proxy:
        client = client_for(
            neo4j_uri=f"bolt://127.0.0.1:{proxy.port}",
            neo4j_password=neo4j_served["neo4j_password"],
            neo4j_timeout_s=10,
            retry_after_s=1,
            open_writes=True,
        )
        write = {"user_id": f"down-{uuid.uuid4().hex[:8]}", "item_id": served.dataset.items[3].id}
        assert client.post("/interactions", json=write).status_code == 200
        proxy.cut()
        refused = []
        for _ in range(5):
            started = time.perf_counter()
            answer = client.post("/interactions", json=write)
            refused.append((answer.status_code, answer.headers.get("Retry-After"), time.perf_counter() - started))
        # The first write meets the cut and fails at once (no driver retries until the 10 s deadline); the
        # breaker answers the others without asking the graph.
        assert [(status, after) for status, after, _ in refused] == [(503, "1")] * 5
        assert max(seconds for _, _, seconds in refused) < 5, refused
        ranked = client.post("/rank", json={"user_id": write["user_id"], "candidates": candidates_for(served, 1, 3)})
        assert ranked.status_code == 200 and ranked.json()["degraded"] == ["graph"]
        proxy.restore()
        deadline = time.monotonic() + 15
        while (status := client.post("/interactions", json=write).status_code) != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert status == 200


def test_keyless_callers_see_no_internal_address(served: Served, client_for: ClientFactory) -> None:
    down = {
        "neo4j_uri": "bolt://127.0.0.1:9",
        "neo4j_password": "unused",
        "neo4j_timeout_s": 2,
        "redis_url": "redis://127.0.0.1:9/0",
        "redis_timeout_s": 0.2,
    }
    keyless = client_for(**down, open_writes=True)
    request = {"user_id": served.dataset.user_id(7), "candidates": candidates_for(served, 7, 3)}
    answers = [
        keyless.post("/rank", json=request),
        keyless.post("/interactions", json={"user_id": "u", "item_id": request["candidates"][0]}),
        keyless.get("/readyz"),
    ]
    assert [a.status_code for a in answers] == [200, 503, 200]
    assert answers[2].json()["checks"] == {"graph": "unavailable", "cache": "unavailable", "scorer": "ok"}
    for answer in answers:
        assert "127.0.0.1:9" not in answer.text and "bolt://" not in answer.text and "redis://" not in answer.text
    keyed = client_for(**down, api_key="ops-key-0123456789")
    assert "127.0.0.1:9" not in keyed.get("/readyz").text
    detailed = keyed.get("/readyz", headers={"X-API-Key": "ops-key-0123456789"}).json()
    assert "bolt://127.0.0.1:9" in detailed["checks"]["graph"]  # the operator, with the key, sees what is wrong


def test_slow_clients_are_cut_off_and_connections_capped(served: Served) -> None:
    settings = served.settings(request_read_timeout_s=1, max_connections=4)
    with serve_in_thread(create_app(settings, service=build_service(settings))) as url:
        address = urlparse(url)
        host, port = address.hostname or "127.0.0.1", address.port or 80

        def connect() -> socket.socket:
            return socket.create_connection((host, port), timeout=10)

        # Headers that never finish: the connection is closed (not held for minutes).
        slow = connect()
        slow.sendall(b"POST /rank HTTP/1.1\r\nHost: kgrank\r\n")
        assert slow.recv(1024) == b""
        # A body shorter than its Content-Length: 408 once the read deadline passes.
        short = connect()
        short.sendall(b"POST /rank HTTP/1.1\r\nHost: kgrank\r\nContent-Type: application/json\r\n")
        short.sendall(b"Content-Length: 100\r\n\r\n" + b'{"user_id"')
        assert short.recv(4096).startswith(b"HTTP/1.1 408")
        for sock in (slow, short):
            sock.close()
        time.sleep(0.2)
        # Beyond 4 open connections, new ones are closed at once; the first four are served.
        held = [connect() for _ in range(6)]
        time.sleep(0.3)
        for extra in held[4:]:
            extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: kgrank\r\n\r\n")
            assert extra.recv(1024) == b""
        held[0].sendall(b"GET /healthz HTTP/1.1\r\nHost: kgrank\r\n\r\n")
        assert held[0].recv(1024).startswith(b"HTTP/1.1 200")
        for sock in held:
            sock.close()


@pytest.mark.neo4j
@pytest.mark.redis
def test_without_candidates_on_neo4j_leaves_seen_items_out_and_follows_a_new_interaction(
    served: Served, client_for: ClientFactory, neo4j_served: dict[str, object], redis_url: str
) -> None:
    client = client_for(**neo4j_served, redis_url=redis_url, open_writes=True)
    user = served.dataset.user_id(9)
    seen = seen_items(served, 9)
    first = client.post("/rank", json={"user_id": user}).json()
    ids = [item["item_id"] for item in first["ranking"]]
    assert first["candidates_from"] == "retriever" and first["degraded"] == [] and len(ids) == 20
    assert not set(ids) & seen and any(item["explanations"] for item in first["ranking"])
    posted = {"event_id": f"rec-{uuid.uuid4().hex[:8]}", "user_id": user, "item_id": ids[0]}
    assert client.post("/interactions", json=posted).json()["user_version"] >= 1
    after = client.post("/rank", json={"user_id": user}).json()
    assert after["cached"] is False and ids[0] not in {item["item_id"] for item in after["ranking"]}


@pytest.mark.neo4j
def test_a_new_item_created_on_neo4j_is_ranked_and_explained_through_its_paths(
    served: Served, client_for: ClientFactory, neo4j_served: dict[str, object]
) -> None:
    client = client_for(**neo4j_served, open_writes=True)
    item_id, body = new_item_for(served, 11)
    assert client.put(f"/items/{item_id}", json=body).json()["created"] is True
    request = {"user_id": served.dataset.user_id(11), "candidates": [item_id, *candidates_for(served, 11, 7)]}
    ranked = client.post("/rank", json=request).json()
    (new,) = [item for item in ranked["ranking"] if item["item_id"] == item_id]
    assert ranked["degraded"] == [] and new["title"] == "A Brand New Film (2026)"
    assert any(e["path"][2]["label"] == "Genre" and e["path"][-1]["key"] == item_id for e in new["explanations"])
