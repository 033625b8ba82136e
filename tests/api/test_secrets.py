"""Credentials never leave the process: not in `kgrank serve`'s log (uvicorn access lines included), not in
any answer, not in CLI errors, even when the dependency they unlock refuses them."""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from services.core.settings import Settings
from tests.api.conftest import Served, candidates_for, serve_process
from tests.unit.test_cli import assert_one_error, kgrank


@pytest.mark.neo4j
@pytest.mark.redis
def test_no_credential_reaches_the_log_or_an_answer(
    served: Served, neo4j_served: dict[str, object], redis_url: str, tmp_path: Path
) -> None:
    password = neo4j_served["neo4j_password"]
    neo4j_password = password.get_secret_value() if password else ""
    api_key = f"key-{uuid.uuid4().hex}"
    redis_secret = f"redis-{uuid.uuid4().hex}"  # a user the test Redis does not have: AUTH fails, the cache degrades
    redis = urlparse(redis_url)
    log = tmp_path / "serve.log"
    with (
        serve_process(
            served,
            log,
            neo4j_uri=str(neo4j_served["neo4j_uri"]),
            neo4j_password=neo4j_password,
            api_key=api_key,
            redis_url=f"redis://kgrank-ghost:{redis_secret}@{redis.hostname}:{redis.port}{redis.path}",
        ) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        body = {"user_id": served.dataset.user_id(1), "candidates": candidates_for(served, 1, 5)}
        answers = [
            client.post("/rank", json=body, headers={"X-API-Key": api_key}),
            client.post("/rank", json=body, headers={"X-API-Key": api_key[:-1]}),
            client.post("/rank", json=body),
            client.post(
                "/interactions",
                json={"user_id": body["user_id"], "item_id": body["candidates"][0]},
                headers={"X-API-Key": api_key},
            ),
            client.get("/readyz"),
            client.get("/metrics"),
            client.get("/openapi.json"),
        ]
        bodies = [answer.text + str(answer.headers) for answer in answers]
        assert [a.status_code for a in answers[:4]] == [200, 401, 401, 200]
        assert answers[0].json()["degraded"] == ["cache"]  # the refused Redis password was really used
    logged = log.read_text()
    assert "POST /rank" in logged and "cache" in logged  # the log holds access lines and the Redis failure
    for secret in filter(None, (neo4j_password, api_key, redis_secret)):
        assert secret not in logged
        assert not any(secret in body for body in bodies)


@pytest.mark.neo4j
def test_a_refused_neo4j_password_is_one_error_line_without_the_password(
    served: Served, neo4j_settings: Settings
) -> None:
    if neo4j_settings.neo4j_password is None:
        pytest.skip("the test server runs without authentication")
    wrong = f"wrong-{uuid.uuid4().hex}"
    item = candidates_for(served, 1, 1)[0]
    env = {"KGRANK_NEO4J_URI": neo4j_settings.neo4j_uri or "", "KGRANK_NEO4J_PASSWORD": wrong}
    result = kgrank(
        "graph", "paths", "--data", served.data_dir, "--user", served.dataset.user_id(1), "--candidates", item, env=env
    )
    assert_one_error(result, r"refused user 'neo4j': check KGRANK_NEO4J_USER and KGRANK_NEO4J_PASSWORD")
    assert wrong not in result.stderr + result.stdout
