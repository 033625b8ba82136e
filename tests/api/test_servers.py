"""The API against a real Neo4j and a real Redis (fail in CI when absent), and with each of them gone."""

from __future__ import annotations

import uuid

import pytest

from tests.api.conftest import ClientFactory, Served, candidates_for


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
def test_interaction_on_neo4j_invalidates_redis_and_reaches_the_next_ranking(
    served: Served, client_for: ClientFactory, neo4j_served: dict[str, object], redis_url: str
) -> None:
    import redis

    client = client_for(**neo4j_served, redis_url=redis_url)
    user = f"live-{uuid.uuid4().hex[:8]}"
    request = {"user_id": user, "candidates": candidates_for(served, 1, 6)}
    assert client.post("/rank", json=request).json()["cold_start"] is True
    assert client.post("/rank", json=request).json()["cached"] is True

    item = served.dataset.items[1]
    recorded = client.post("/interactions", json={"user_id": user, "item_id": item.id, "timestamp": 1_700_000_000})
    assert recorded.status_code == 200 and recorded.json()["cache_invalidated"] is True

    after = client.post("/rank", json=request).json()
    assert after["cached"] is False and after["known_user"] is True and after["history_length"] == 1
    assert client.post("/rank", json=request).json()["cached"] is True

    keys = redis.Redis.from_url(redis_url).keys("kgrank:v1:*")
    assert any(key.startswith(b"kgrank:v1:user-version:") for key in keys)
    assert all(user.encode() not in key for key in keys)  # user ids are hashed into keys


def test_redis_down_answers_uncached_and_says_so(served: Served, client_for: ClientFactory) -> None:
    client = client_for(redis_url="redis://127.0.0.1:9/0", redis_timeout_s=0.2)
    request = {"user_id": served.dataset.user_id(6), "candidates": candidates_for(served, 6, 5)}
    for _ in range(2):
        body = client.post("/rank", json=request).json()
        assert body["degraded"] == ["cache"] and body["cached"] is False and body["model"]["ranked_by"] == "llm"
    recorded = client.post("/interactions", json={"user_id": request["user_id"], "item_id": request["candidates"][0]})
    assert recorded.status_code == 200
    assert recorded.json()["cache_invalidated"] is False and recorded.json()["degraded"] == ["cache"]
    assert client.get("/readyz").json()["degraded"] == ["cache"]


def test_neo4j_down_ranks_from_the_dataset_history_and_refuses_interactions(
    served: Served, client_for: ClientFactory
) -> None:
    client = client_for(neo4j_uri="bolt://127.0.0.1:9", neo4j_password="unused", neo4j_timeout_s=2)
    request = {"user_id": served.dataset.user_id(7), "candidates": candidates_for(served, 7, 5)}
    body = client.post("/rank", json=request).json()
    assert body["degraded"] == ["graph"] and body["known_user"] is True and body["history_length"] == 20
    assert body["model"]["graph_version"] is None and body["model"]["ranked_by"] == "llm"
    assert all(item["explanations"] == [] for item in body["ranking"])
    refused = client.post("/interactions", json={"user_id": request["user_id"], "item_id": request["candidates"][0]})
    assert refused.status_code == 503 and "unreachable" in refused.json()["error"]
    assert client.get("/readyz").json()["degraded"] == ["graph"]
