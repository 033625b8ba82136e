"""The ranking cache in a real three-master Redis Cluster (started here from Debian's redis-server; fails in
CI when it is not installed): keys spread over every master, cached answers through the API, a master that
dies, and a standalone Redis named while KGRANK_REDIS_CLUSTER is on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Iterator
from pathlib import Path

import pytest

from services.api.local import free_port
from services.core.errors import ConfigError
from services.ranker.serving.cache import CacheUnavailableError, RedisCache, cache_key
from support.redis_cluster import LocalRedisCluster, RedisNode, redis_binaries_missing, redis_cluster, redis_server
from tests.api.conftest import ClientFactory, Served, candidates_for
from tests.conftest import unavailable
from tests.unit.test_cli import assert_one_error, kgrank

pytestmark = pytest.mark.redis

TIMEOUT_S = 0.5
# A failed cache call may wait one socket timeout plus a slot-map refresh, or the client's fixed 0.25 s pause
# after CLUSTERDOWN; anything near a second more means it hung or retried.
FAIL_FAST_S = TIMEOUT_S + 1.0
KEYS = [cache_key(f"user-{i}", i % 4, f"request-{i}") for i in range(60)]


@pytest.fixture
def cluster() -> Iterator[LocalRedisCluster]:
    if (missing := redis_binaries_missing()) is not None:
        unavailable(missing)
    with redis_cluster() as running:
        yield running


@pytest.fixture
def standalone(tmp_path: Path) -> Iterator[RedisNode]:
    if (missing := redis_binaries_missing()) is not None:
        unavailable(missing)
    with redis_server(tmp_path / "standalone") as node:
        yield node


def _cache(cluster: LocalRedisCluster) -> RedisCache:
    return RedisCache(cluster.url, ttl_s=60, timeout_s=TIMEOUT_S, cluster=True)


def _keys_by_node(cluster: LocalRedisCluster) -> dict[int, set[str]]:
    keys = {}
    for node in cluster.nodes:
        with node.client() as client:
            keys[node.port] = {key.decode() for key in client.keys("kgrank:v2:*")}
    return keys


async def _fails_fast(call: Awaitable[object]) -> float:
    """Seconds until the cache call failed as unavailable."""
    started = time.perf_counter()
    with pytest.raises(CacheUnavailableError):
        await call
    return time.perf_counter() - started


def test_keys_round_trip_and_spread_over_every_master(cluster: LocalRedisCluster) -> None:
    async def round_trip() -> list[bytes | None]:
        cache = _cache(cluster)
        try:
            await cache.ping()
            for key in KEYS:
                await cache.store(key, key.encode())
            return [await cache.lookup(key) for key in KEYS]
        finally:
            await cache.close()

    assert asyncio.run(round_trip()) == [key.encode() for key in KEYS]
    by_node = _keys_by_node(cluster)
    assert all(by_node.values()), {port: len(keys) for port, keys in by_node.items()}
    assert sorted(key for keys in by_node.values() for key in keys) == sorted(KEYS)  # each key on one master
    with cluster.nodes[0].client() as client:
        assert 0 < client.ttl(next(iter(by_node[cluster.nodes[0].port]))) <= 60


def test_connections_the_cluster_dropped_are_retried_once_not_reported(cluster: LocalRedisCluster) -> None:
    """As after a node restart: every pooled connection is dead, and no caller sees it."""

    async def lookups_after_drop() -> list[bytes | None]:
        cache = _cache(cluster)
        try:
            for key in KEYS:
                await cache.store(key, b"1")
            for node in cluster.nodes:
                with node.client() as admin:
                    assert admin.client_kill_filter(_type="normal") >= 1  # the cache's pooled connections
            return [await cache.lookup(key) for key in KEYS]
        finally:
            await cache.close()

    assert asyncio.run(lookups_after_drop()) == [b"1"] * len(KEYS)


def test_keys_are_found_while_their_slot_moves_and_after(cluster: LocalRedisCluster) -> None:
    key = KEYS[0]
    source = cluster.owner(key)
    target = next(node for node in cluster.nodes if node != source)

    def keys_in_slot(node: RedisNode) -> int:
        with node.client() as client:
            return int(client.execute_command("CLUSTER", "COUNTKEYSINSLOT", client.cluster("KEYSLOT", key)))

    async def lookups() -> list[bytes | None]:
        cache = _cache(cluster)
        try:
            await cache.store(key, b"1")
            cluster.move_slot(key, target, finish=False)  # the old master answers ASK
            assert (keys_in_slot(source), keys_in_slot(target)) == (0, 1)
            during = await cache.lookup(key)
            cluster.move_slot(key, target)  # the old master answers MOVED
            after = await cache.lookup(key)
            await cache.store(key, b"2")
            return [during, after, await cache.lookup(key)]
        finally:
            await cache.close()

    assert asyncio.run(lookups()) == [b"1", b"1", b"2"]
    assert cluster.owner(key) == target


def test_rankings_are_cached_in_the_cluster(
    served: Served, client_for: ClientFactory, cluster: LocalRedisCluster
) -> None:
    client = client_for(redis_url=cluster.url, redis_cluster=True)
    request = {"user_id": served.dataset.user_id(3), "candidates": candidates_for(served, 3, 6)}
    first = client.post("/rank", json=request).json()
    second = client.post("/rank", json=request).json()
    assert (first["cached"], first["degraded"]) == (False, [])
    assert (second["cached"], second["degraded"]) == (True, [])
    assert second["ranking"] == first["ranking"]
    assert sum(len(keys) for keys in _keys_by_node(cluster).values()) == 1
    assert client.get("/readyz").json()["checks"]["cache"] == "ok"


def test_a_dead_master_fails_cache_calls_fast_and_ranking_goes_on_uncached(
    served: Served, client_for: ClientFactory, cluster: LocalRedisCluster
) -> None:
    client = client_for(redis_url=cluster.url, redis_cluster=True, redis_timeout_s=TIMEOUT_S)
    request = {"user_id": served.dataset.user_id(4), "candidates": candidates_for(served, 4, 6)}
    assert client.post("/rank", json=request).json()["cached"] is False
    assert client.post("/rank", json=request).json()["cached"] is True
    dead = cluster.nodes[1]

    async def cache_calls() -> tuple[list[float], list[float]]:
        cache = _cache(cluster)
        try:
            for key in KEYS:
                await cache.store(key, b"1")
            on_dead = sorted(_keys_by_node(cluster)[dead.port])[:3]
            dead.kill()
            # At once: the dead master's keys fail (connection refused), and so does the all-masters ping.
            right_away = [await _fails_fast(cache.lookup(key)) for key in on_dead]
            right_away += [await _fails_fast(cache.store(on_dead[0], b"2")), await _fails_fast(cache.ping())]
            # Once the others count it as failed, the cluster refuses every key (CLUSTERDOWN).
            await asyncio.to_thread(cluster.wait_for_state, "fail", 15)
            marked_failed = [await _fails_fast(cache.lookup(key)) for key in KEYS[:5]]
            return right_away, marked_failed
        finally:
            await cache.close()

    right_away, marked_failed = asyncio.run(cache_calls())
    assert max(right_away + marked_failed) < FAIL_FAST_S, (right_away, marked_failed)

    answer = client.post("/rank", json=request)
    body = answer.json()
    assert answer.status_code == 200 and body["cached"] is False and body["degraded"] == ["cache"]
    assert body["model"]["ranked_by"] == "llm" and body["timings_ms"]["cache"] < FAIL_FAST_S * 1000
    assert client.get("/readyz").json()["checks"]["cache"] == "unavailable"


def test_a_standalone_redis_is_refused_when_the_cluster_flag_is_on(standalone: RedisNode, served: Served) -> None:
    with pytest.raises(ConfigError, match=r"KGRANK_REDIS_CLUSTER is on, but the Redis at 127\.0\.0\.1:\d+ is not a"):
        RedisCache(standalone.url, ttl_s=60, timeout_s=TIMEOUT_S, cluster=True)
    with pytest.raises(ConfigError, match=r"cannot name a Redis Cluster node: .*'db' must be 0"):
        RedisCache(f"redis://127.0.0.1:{standalone.port}/15", ttl_s=60, timeout_s=TIMEOUT_S, cluster=True)

    env = {
        "KGRANK_DATASET_DIR": str(served.data_dir),
        "KGRANK_MODEL_DIR": str(served.bundle.ranker),
        "KGRANK_RETRIEVER_DIR": str(served.bundle.retriever),
        "KGRANK_REDIS_URL": standalone.url,
        "KGRANK_REDIS_CLUSTER": "true",
    }
    refused = kgrank("serve", "--port", str(free_port()), env=env)
    assert_one_error(refused, r"^error: KGRANK_REDIS_CLUSTER is on, but the Redis at 127\.0\.0\.1:\d+ is not a")


def test_a_cluster_out_of_reach_at_startup_only_turns_the_cache_off() -> None:
    async def lookup() -> float:
        cache = RedisCache(f"redis://127.0.0.1:{free_port()}/0", ttl_s=60, timeout_s=TIMEOUT_S, cluster=True)
        try:
            return await _fails_fast(cache.lookup(KEYS[0]))
        finally:
            await cache.close()

    assert asyncio.run(lookup()) < FAIL_FAST_S
