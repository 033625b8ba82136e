"""The servers CI starts are the real ones, reachable the way users reach them."""

from __future__ import annotations

import urllib.request

import pytest

from services.core.errors import GraphAuthError
from services.core.settings import Settings
from services.graph_loader.neo4j_connection import open_driver


@pytest.mark.neo4j
def test_neo4j_browser_is_served(neo4j_settings: Settings) -> None:
    with urllib.request.urlopen("http://127.0.0.1:7474/browser/", timeout=10) as response:
        assert response.status == 200
        assert b"<title>Neo4j Browser</title>" in response.read()


@pytest.mark.neo4j
def test_neo4j_is_the_526_community_server(neo4j_driver) -> None:
    records, _, _ = neo4j_driver.execute_query("CALL dbms.components() YIELD versions, edition")
    assert records[0]["edition"] == "community"
    assert records[0]["versions"][0].startswith("5.26.")


@pytest.mark.neo4j
def test_wrong_password_is_a_clear_auth_error(neo4j_settings: Settings) -> None:
    if neo4j_settings.neo4j_password is None:
        pytest.skip("the test server runs without authentication")
    wrong = Settings(neo4j_uri=neo4j_settings.neo4j_uri, neo4j_password="definitely-wrong")
    with pytest.raises(
        GraphAuthError, match=r"refused user 'neo4j': check KGRANK_NEO4J_USER and KGRANK_NEO4J_PASSWORD"
    ):
        open_driver(wrong)


@pytest.mark.redis
def test_redis_answers(redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    client.set("kgrank:test", "1", ex=10)
    assert client.get("kgrank:test") == b"1"
    assert client.delete("kgrank:test") == 1
