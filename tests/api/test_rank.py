"""POST /rank, /interactions and the operational endpoints on the embedded graph and in-process cache."""

from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError

from services.core.settings import Settings
from services.ranker.paths.render import path_cypher
from tests.api.conftest import ClientFactory, Served, candidates_for, new_item_for, seen_items


def test_rank_orders_every_candidate_and_explains_with_graph_paths(served: Served, client_for: ClientFactory) -> None:
    client = client_for()
    user = served.dataset.user_id(1)
    candidates = candidates_for(served, 1)
    response = client.post("/rank", json={"user_id": user, "candidates": candidates})
    assert response.status_code == 200, response.text
    body = response.json()
    ranking = body["ranking"]
    assert sorted(item["item_id"] for item in ranking) == sorted(candidates)
    assert [item["rank"] for item in ranking] == list(range(1, len(candidates) + 1))
    scores = [item["score"] for item in ranking]
    assert scores == sorted(scores, reverse=True) and all(item["ranker_score"] <= 0 for item in ranking)  # log-probs
    if served.fusion_weight:  # fused: standardised ranker and retriever scores mixed at the weight chosen on val
        assert body["model"]["fusion_weight"] == served.fusion_weight and body["model"]["retriever"]
        assert all(item["retriever_score"] is not None for item in ranking)
    else:
        assert scores == [item["ranker_score"] for item in ranking]
    assert body["known_user"] and not body["cold_start"] and body["history_length"] == 20
    assert body["model"]["ranked_by"] == "llm" and body["model"]["path_strategy"] == "preference"
    assert body["model"]["graph_version"] == served.dataset.manifest.data_hash
    assert body["degraded"] == [] and body["cached"] is False
    assert {"cache", "graph", "paths", "prompt", "score", "total"} <= set(body["timings_ms"])
    assert 100 < body["prompt_tokens"] <= 600  # the checkpoint's budget

    explained = [item for item in ranking if item["explanations"]]
    assert explained, "a user with 20 history items has paths to some candidate"
    titles = {item.id: item.title for item in served.dataset.items}
    for item in explained:
        assert len(item["explanations"]) <= 3
        for explanation in item["explanations"]:
            path = explanation["path"]
            nodes = [e for e in path if e["kind"] == "node"]
            assert nodes[-1]["key"] == item["item_id"] and path[0]["kind"] == "node"
            assert [e["kind"] for e in path[1::2]] == ["relationship"] * (len(path) // 2)
            assert explanation["text"].endswith(titles[item["item_id"]])
            assert explanation["cypher"].startswith("MATCH p = (n0:Item")
            assert served.dataset.name in explanation["cypher"]


def test_the_same_request_is_answered_from_the_cache(served: Served, client_for: ClientFactory) -> None:
    client = client_for()
    request = {"user_id": served.dataset.user_id(2), "candidates": candidates_for(served, 2, 6), "top_k": 3}
    first = client.post("/rank", json=request).json()
    second = client.post("/rank", json=request).json()
    assert len(first["ranking"]) == 3 and first["cached"] is False and second["cached"] is True
    assert second["ranking"] == first["ranking"]
    assert set(second["timings_ms"]) == {"graph_state", "cache", "total"}  # the user's version, then the cache
    different = client.post("/rank", json=request | {"explain": False}).json()
    assert different["cached"] is False and all(item["explanations"] == [] for item in different["ranking"])
    metrics = client.get("/metrics").text
    assert 'kgrank_cache_lookups_total{result="hit"} 1.0' in metrics
    assert 'kgrank_stage_seconds_count{stage="score"} 2.0' in metrics


def test_an_interaction_invalidates_the_cache_and_reaches_the_next_ranking(
    served: Served, client_for: ClientFactory
) -> None:
    client = client_for(open_writes=True)
    user = f"new-user-{uuid.uuid4().hex[:8]}"
    candidates = candidates_for(served, 1, 5)
    request = {"user_id": user, "candidates": candidates}
    cold = client.post("/rank", json=request).json()
    assert cold["known_user"] is False and cold["cold_start"] is True and cold["history_length"] == 0
    assert all(item["explanations"] == [] for item in cold["ranking"])  # no history, no paths
    assert client.post("/rank", json=request).json()["cached"] is True

    watched = served.dataset.items[0]
    event = {"event_id": f"e-{user}", "user_id": user, "item_id": watched.id, "rating": 4.5, "timestamp": 1_700_000_000}
    recorded = client.post("/interactions", json=event)
    assert recorded.status_code == 200, recorded.text
    assert recorded.json() == event | {"duplicate": False, "user_version": 1}

    warm = client.post("/rank", json=request).json()
    assert warm["cached"] is False and warm["user_version"] == 1
    assert warm["known_user"] is True and warm["cold_start"] is False and warm["history_length"] == 1
    origins = {e["path"][0]["key"] for item in warm["ranking"] for e in item["explanations"]}
    assert origins <= {watched.id}

    # A retry of the same event changes nothing, and the cached ranking stays valid; a reused id with another
    # body is a client bug, refused.
    retry = client.post("/interactions", json=event).json()
    assert retry["duplicate"] is True and retry["user_version"] == 1
    assert client.post("/rank", json=request).json()["cached"] is True
    conflict = client.post("/interactions", json=event | {"rating": 1.0})
    assert conflict.status_code == 409 and event["event_id"] in conflict.json()["error"]


def test_bad_candidates_are_rejected_naming_the_ids(served: Served, client_for: ClientFactory) -> None:
    client = client_for(open_writes=True)
    user = served.dataset.user_id(1)
    known = [item.id for item in served.dataset.items]

    unknown = client.post("/rank", json={"user_id": user, "candidates": [known[0], "no-such-item", "x' OR 1=1"]})
    assert unknown.status_code == 422
    assert unknown.json()["item_ids"] == ["no-such-item", "x' OR 1=1"]

    duplicate = client.post("/rank", json={"user_id": user, "candidates": [known[0], known[1], known[0]]})
    assert duplicate.status_code == 422 and duplicate.json()["item_ids"] == [known[0]]

    too_many = client.post("/rank", json={"user_id": user, "candidates": known[:23]})
    assert too_many.status_code == 422 and too_many.json()["item_ids"] == known[20:23]

    for body in ({"user_id": user, "candidates": []}, {"user_id": "", "candidates": known[:2]}):
        invalid = client.post("/rank", json=body)
        assert invalid.status_code == 422 and invalid.json()["error"].startswith("invalid body")
    assert client.post("/rank", json={"user_id": user, "candidates": known[:2], "top_k": 0}).status_code == 422
    assert client.post("/interactions", json={"user_id": user, "item_id": "no-such-item"}).json()["item_ids"] == [
        "no-such-item"
    ]


def test_the_api_key_is_required_when_configured(served: Served, client_for: ClientFactory) -> None:
    client = client_for(api_key="s3cret-key")
    request = {"user_id": served.dataset.user_id(1), "candidates": candidates_for(served, 1, 3)}
    assert client.post("/rank", json=request).status_code == 401
    wrong = client.post("/rank", json=request, headers={"X-API-Key": "s3cret-kez"})
    assert wrong.status_code == 401 and "s3cret" not in wrong.text
    assert client.post("/rank", json=request, headers={"X-API-Key": "s3cret-key"}).status_code == 200
    assert client.get("/healthz").status_code == 200  # probes need no key
    write = {"user_id": "keyed-user", "item_id": request["candidates"][0]}
    assert client.post("/interactions", json=write).status_code == 401
    assert client.post("/interactions", json=write, headers={"X-API-Key": "s3cret-key"}).status_code == 200


def test_writes_are_closed_without_a_key_unless_started_open(served: Served, client_for: ClientFactory) -> None:
    write = {"user_id": "closed-user", "item_id": served.dataset.items[0].id}
    closed = client_for().post("/interactions", json=write)
    assert closed.status_code == 403 and "KGRANK_API_KEY" in closed.json()["error"]
    assert "--open-writes" in closed.json()["error"]
    assert client_for(open_writes=True).post("/interactions", json=write).status_code == 200


@pytest.mark.parametrize("key", ["", "   ", " padded", "\t"])
def test_an_empty_or_blank_key_refuses_to_start(key: str) -> None:
    with pytest.raises(ValidationError, match="KGRANK_API_KEY is set but empty, blank or padded"):
        Settings(api_key=key)


def test_open_writes_and_a_key_together_refuse_to_start() -> None:
    with pytest.raises(ValidationError, match="either open or keyed"):
        Settings(api_key="a-real-key-1234", open_writes=True)


def test_writes_are_rate_limited_per_caller(served: Served, client_for: ClientFactory) -> None:
    client = client_for(api_key="rate-key-0123456789", write_burst=3, write_rate_per_s=0.5)
    write = {"user_id": "rate-user", "item_id": served.dataset.items[0].id}
    answers = [client.post("/interactions", json=write, headers={"X-API-Key": "rate-key-0123456789"}) for _ in range(5)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    assert answers[3].headers["Retry-After"] == "2" and "too many writes" in answers[3].json()["error"]
    assert 'kgrank_write_refusals_total{reason="rate_limited"} 2.0' in client.get("/metrics").text


@pytest.mark.parametrize(
    "user_id",
    ["x" * 129, "nul\x00inside", "zero\u200bwidth", "line\nbreak", " leading", "trailing ", ""],
)
def test_ids_that_break_the_rule_are_refused(served: Served, client_for: ClientFactory, user_id: str) -> None:
    client = client_for(open_writes=True)
    item = served.dataset.items[0].id
    for path, body in (
        ("/interactions", {"user_id": user_id, "item_id": item}),
        ("/interactions", {"event_id": user_id, "user_id": "ok-user", "item_id": item}),
        ("/rank", {"user_id": user_id, "candidates": [item]}),
    ):
        answer = client.post(path, json=body)
        assert answer.status_code == 422, (path, body, answer.text)
        assert "printable" in answer.json()["error"] or "empty" in answer.json()["error"]
    assert client.post("/interactions", json={"user_id": "x" * 128, "item_id": item}).status_code == 200


def test_scorer_down_falls_back_to_the_preference_module_and_says_so(served: Served, client_for: ClientFactory) -> None:
    client = client_for(scorer="vllm", vllm_url="http://127.0.0.1:9", scorer_timeout_s=5, retry_after_s=60)
    request = {"user_id": served.dataset.user_id(3), "candidates": candidates_for(served, 3, 8)}
    body = client.post("/rank", json=request).json()
    assert body["degraded"] == ["scorer"] and body["model"]["ranked_by"] == "preference module"
    assert len(body["ranking"]) == 8
    again = client.post("/rank", json=request).json()
    assert again["cached"] is False  # a degraded answer is never cached
    exposition = client.get("/metrics").text
    assert 'kgrank_degraded_total{reason="scorer"} 2.0' in exposition
    # The first failure opened the scorer's breaker (the second answer skipped it); the graph's stays closed.
    assert 'kgrank_breaker_open{dependency="scorer"} 1.0' in exposition
    assert 'kgrank_breaker_open{dependency="graph"} 0.0' in exposition
    ready = client.get("/readyz").json()
    assert ready["degraded"] == ["scorer"] and ready["checks"]["scorer"] == "unavailable"  # no address to strangers


def test_probes_and_docs(served: Served, client_for: ClientFactory) -> None:
    client = client_for()
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready == {"ready": True, "checks": {"graph": "ok", "cache": "ok", "scorer": "ok"}, "degraded": []}
    schema = client.get("/openapi.json").json()
    assert {"/rank", "/interactions", "/healthz", "/readyz"} <= set(schema["paths"])
    item_invalid = schema["paths"]["/items/{item_id}"]["put"]["responses"]["422"]["description"]
    assert (
        "schema" in item_invalid
        and item_invalid != schema["paths"]["/interactions"]["post"]["responses"]["422"]["description"]
    )
    assert client.get("/docs").status_code == 200


def test_explanation_cypher_is_the_renderer_s(served: Served, client_for: ClientFactory) -> None:
    """The API returns exactly the Browser query the Neo4j tests prove draws the path."""
    client = client_for()
    body = client.post(
        "/rank", json={"user_id": served.dataset.user_id(4), "candidates": candidates_for(served, 4)}
    ).json()
    from services.ranker.paths.models import Hop, PathNode, RelationPath

    for item in body["ranking"]:
        for explanation in item["explanations"]:
            elements = explanation["path"]
            path = RelationPath(
                nodes=tuple(PathNode(e["label"], e["key"], e["title"]) for e in elements[::2]),
                hops=tuple(Hop(e["type"], e["direction"] == "forward") for e in elements[1::2]),
            )
            assert explanation["cypher"] == path_cypher(path, dataset=served.dataset.name, schema=served.dataset.schema)


def test_without_candidates_the_retriever_picks_unseen_items_from_the_live_history(
    served: Served, client_for: ClientFactory
) -> None:
    client = client_for(open_writes=True)
    user = served.dataset.user_id(8)
    body = client.post("/rank", json={"user_id": user}).json()
    ids = [item["item_id"] for item in body["ranking"]]
    assert body["candidates_from"] == "retriever" and body["degraded"] == [] and len(ids) == 20
    assert not set(ids) & seen_items(served, 8)
    assert client.post("/rank", json={"user_id": user}).json()["cached"] is True
    event = {"user_id": user, "item_id": ids[0], "timestamp": 2_000_000_000}
    assert client.post("/interactions", json=event).status_code == 200
    after = client.post("/rank", json={"user_id": user, "top_k": 5}).json()
    assert after["cached"] is False and after["user_version"] == 1 and len(after["ranking"]) == 5
    assert ids[0] not in {item["item_id"] for item in after["ranking"]}  # just seen: left out
    cold = client.post("/rank", json={"user_id": f"cold-{uuid.uuid4().hex[:6]}"}).json()
    assert cold["cold_start"] is True and len(cold["ranking"]) == 20  # the retriever's order for no history


def test_without_candidates_and_without_a_retriever_is_a_clear_422(served: Served, client_for: ClientFactory) -> None:
    client = client_for(retriever_dir=None, fusion=False)
    answer = client.post("/rank", json={"user_id": served.dataset.user_id(1)})
    assert answer.status_code == 422 and "--retriever" in answer.json()["error"]


def test_a_new_item_created_through_the_api_is_ranked_and_explained_through_its_paths(
    served: Served, client_for: ClientFactory
) -> None:
    client = client_for(open_writes=True)
    item_id, body = new_item_for(served, 10)
    created = client.put(f"/items/{item_id}", json=body)
    assert created.status_code == 200 and created.json()["created"] is True
    request = {"user_id": served.dataset.user_id(10), "candidates": [item_id, *candidates_for(served, 10, 7)]}
    ranked = client.post("/rank", json=request).json()
    (new,) = [item for item in ranked["ranking"] if item["item_id"] == item_id]
    assert ranked["degraded"] == [] and new["title"] == "A Brand New Film (2026)"
    assert any(e["path"][2]["label"] == "Genre" and e["path"][-1]["key"] == item_id for e in new["explanations"])
    assert client.post("/rank", json=request).json()["cached"] is True
    # Replacing the item changes what a cached ranking depends on: the next one is computed afresh.
    replaced = client.put(f"/items/{item_id}", json={"title": "A Renamed Film (2026)", "attributes": {}})
    assert replaced.status_code == 200 and replaced.json()["created"] is False
    again = client.post("/rank", json=request).json()
    assert again["cached"] is False
    assert [item["title"] for item in again["ranking"] if item["item_id"] == item_id] == ["A Renamed Film (2026)"]
    assert client.post("/interactions", json={"user_id": f"fan-{item_id}", "item_id": item_id}).status_code == 200


def test_catalog_writes_are_checked(served: Served, client_for: ClientFactory) -> None:
    client = client_for(open_writes=True)
    dataset_item = served.dataset.items[0].id
    taken = client.put(f"/items/{dataset_item}", json={"title": "x"})
    assert taken.status_code == 409 and "part of the served dataset" in taken.json()["error"]
    wrong = client.put("/items/new-x", json={"title": "x", "attributes": {"Colour": ["red"]}})
    assert wrong.status_code == 422 and "Colour" in wrong.json()["error"]
    assert client.put("/items/%20padded", json={"title": "x"}).status_code == 422
    assert client_for().put("/items/new-y", json={"title": "y"}).status_code == 403  # writes closed without a key
    assert client.post("/rank", json={"user_id": "u", "candidates": ["never-created"]}).json()["item_ids"] == [
        "never-created"
    ]
