"""Odd and hostile input: every answer is a clear 4xx (or a correct 200), never a 5xx or a stack trace."""

from __future__ import annotations

import json
import uuid

import pytest

from services.core.settings import Settings
from tests.api.conftest import ClientFactory, Served, candidates_for

INJECTIONS = [
    "' OR 1=1 //",
    '"}) MATCH (n) DETACH DELETE n //',
    "1}) RETURN 1 UNION MATCH (n) RETURN n //",
    "x\\u0027; DROP TABLE nodes; --",
]


def _assert_clean_error(response, status: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "item_ids"} and body["error"]
    assert "Traceback" not in response.text and 'File "' not in response.text
    return body


def test_bodies_over_the_cap_are_refused_before_parsing(served: Served, client_for: ClientFactory) -> None:
    client = client_for(max_body_bytes=4096)
    huge = {"user_id": "u", "candidates": ["x" * 200] * 1000}
    body = _assert_clean_error(client.post("/rank", json=huge), 413)
    assert "4096 bytes" in body["error"]

    def chunks():  # no Content-Length: sent chunked
        yield b'{"user_id": "u", "candidates": ['
        for _ in range(200):
            yield b'"' + b"y" * 100 + b'", '
        yield b'"z"]}'

    _assert_clean_error(client.post("/rank", content=chunks(), headers={"content-type": "application/json"}), 413)
    small = json.dumps({"user_id": served.dataset.user_id(1), "candidates": candidates_for(served, 1, 3)}).encode()
    for content in (small, iter([small[:10], small[10:]])):  # under the cap, with a length or chunked
        answer = client.post("/rank", content=content, headers={"content-type": "application/json"})
        assert answer.status_code == 200 and len(answer.json()["ranking"]) == 3


@pytest.mark.parametrize(
    ("content", "status"),
    [
        (b'{"user_id": "\xff\xfe", "candidates": ["1"]}', 400),  # not UTF-8: the body cannot be read at all
        (b"\xff\xfe\x00\x00", 422),
        (b'{"user_id": "1", "candidates": ["1"', 422),
        (b"", 422),
        (b"[]", 422),
        (b"null", 422),
    ],
)
def test_undecodable_or_malformed_json_is_refused(client_for: ClientFactory, content: bytes, status: int) -> None:
    response = client_for().post("/rank", content=content, headers={"content-type": "application/json"})
    assert _assert_clean_error(response, status)["error"].startswith("invalid body")


def test_unknown_routes_and_methods_answer_in_the_same_shape(client_for: ClientFactory) -> None:
    client = client_for()
    _assert_clean_error(client.get("/nowhere"), 404)
    assert _assert_clean_error(client.get("/rank"), 405) and client.get("/rank").headers["allow"] == "POST"


@pytest.mark.parametrize(
    "body",
    [
        {"user_id": 7, "candidates": ["1"]},
        {"user_id": "7", "candidates": "1,2,3"},
        {"user_id": "7", "candidates": [1, 2]},
        {"user_id": "7", "candidates": ["1"], "top_k": "ten"},
        {"user_id": "7", "candidates": ["1"], "top_k": -1},
        {"user_id": "7", "candidates": ["1"], "top_k": 10**12},
        {"user_id": "7", "candidates": ["1"], "top_k": 2.5},
        {"user_id": "7", "candidates": ["1"], "explain": "maybe"},
        {"user_id": "7", "candidates": ["1"], "admin": True},
        {"user_id": "x" * 10_000, "candidates": ["1"]},
        {"user_id": "7", "candidates": [""]},
    ],
)
def test_wrong_types_and_absurd_values_are_a_422(client_for: ClientFactory, body: dict) -> None:
    _assert_clean_error(client_for().post("/rank", json=body), 422)


@pytest.mark.parametrize("value", INJECTIONS)
def test_injection_strings_are_data(served: Served, client_for: ClientFactory, value: str) -> None:
    client = client_for()
    known = candidates_for(served, 1, 2)
    answer = client.post("/rank", json={"user_id": value, "candidates": known})
    assert answer.status_code == 200 and answer.json()["known_user"] is False  # an unknown user, nothing more
    refused = _assert_clean_error(client.post("/rank", json={"user_id": "1", "candidates": [*known, value]}), 422)
    assert refused["item_ids"] == [value]


@pytest.mark.neo4j
def test_injected_ids_reach_neo4j_only_as_values(
    served: Served, client_for: ClientFactory, neo4j_served: dict[str, object], neo4j_driver, neo4j_settings: Settings
) -> None:
    def counts() -> tuple[int, int]:
        records, _, _ = neo4j_driver.execute_query(
            "MATCH (n {dataset: $dataset}) OPTIONAL MATCH (n)-[r]->() RETURN count(DISTINCT n) AS nodes, count(r) AS rels",
            dataset=served.dataset.name,
            database_=neo4j_settings.neo4j_database,
        )
        return records[0]["nodes"], records[0]["rels"]

    client = client_for(**neo4j_served, open_writes=True)
    item = served.dataset.items[0].id
    before = counts()
    for value in INJECTIONS:
        user = f"{value}-{uuid.uuid4().hex[:6]}"
        assert client.post("/interactions", json={"user_id": user, "item_id": item}).status_code == 200
        records, _, _ = neo4j_driver.execute_query(
            "MATCH (u:User {dataset: $dataset, id: $id})-[:RATED]->(i:Item) RETURN i.id AS item",
            dataset=served.dataset.name,
            id=user,
            database_=neo4j_settings.neo4j_database,
        )
        assert [r["item"] for r in records] == [item]  # stored verbatim, as the id of one new user
    # Per value: one new user and one event in the log; one RATED edge.
    assert counts() == (before[0] + 2 * len(INJECTIONS), before[1] + len(INJECTIONS))


def test_serve_refuses_bad_settings_with_one_error_line(served: Served, tmp_path) -> None:
    from tests.unit.test_cli import assert_one_error, kgrank

    data, model, retriever = served.data_dir, served.bundle.ranker, served.bundle.retriever
    assert_one_error(
        kgrank("serve"),
        r"needs a processed dataset \(--data, KGRANK_DATASET_DIR or dataset_dir in kgrank\.toml\) and a ranker checkpoint \(--model",
    )
    for blank in ("", "  "):
        assert_one_error(kgrank("serve", env={"KGRANK_API_KEY": blank}), r"KGRANK_API_KEY is set but empty, blank")
    assert_one_error(kgrank("serve", "--data", tmp_path, "--model", model), r"not a processed dataset")
    assert_one_error(kgrank("serve", "--data", data, "--model", tmp_path), r"no kgrank_ranker.json")
    for uri, pattern in (("http://127.0.0.1:7474", r"use one of bolt"), ("bolt://x:port", r"could not be cast")):
        assert_one_error(
            kgrank("serve", "--data", data, "--model", model, "--retriever", retriever, "--neo4j-uri", uri), pattern
        )
    if served.fusion_weight:  # a checkpoint that fuses needs the retriever it fuses with
        assert_one_error(kgrank("serve", "--data", data, "--model", model), r"give the retriever run with --retriever")
    assert_one_error(
        kgrank("serve", "--data", data, "--model", model, "--retriever", served.bundle.preference),
        r"preference is not a retriever run \(no training.json and checkpoint.pt and candidates-test.npz\)",
    )
    assert_one_error(kgrank("serve", "--data", data, "--model", served.bundle.preference), r"no kgrank_ranker.json")
