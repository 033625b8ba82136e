"""Cached rankings, keyed so that a stale one can never be found: no scans, no deletes, no invalidation.

A key holds the user, the user's version and a digest of the request (which covers the model version
and the graph's load). The version is durable: the count of the user's live events, read from the graph
in the same round trip as the load (services/ranker/serving/graph.py) and bumped in the transaction that records an
interaction. An answer stored under an older version is never found again and expires by its TTL; Redis
being down when an interaction arrives, an API restart, or another replica writing cannot change that,
because nothing about freshness lives in the cache.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from typing import Protocol
from urllib.parse import urlsplit

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError

from services.core.errors import ConfigError, KgrankError

logger = logging.getLogger(__name__)


class CacheUnavailableError(KgrankError):
    """The cache could not be asked; the caller answers uncached and says so."""


def user_digest(user_id: str) -> str:
    return hashlib.sha256(user_id.encode()).hexdigest()[:24]


def cache_key(user_id: str, user_version: int, request_digest: str) -> str:
    return f"kgrank:v2:rank:{user_digest(user_id)}:{user_version}:{request_digest}"


class RankingCache(Protocol):
    name: str

    async def lookup(self, key: str) -> bytes | None: ...

    async def store(self, key: str, payload: bytes) -> None: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class MemoryCache:
    """An in-process LRU with TTL: the cache when no Redis is configured."""

    name = "memory"

    def __init__(self, *, entries: int, ttl_s: float) -> None:
        self._entries = entries
        self._ttl_s = ttl_s
        self._store: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    async def lookup(self, key: str) -> bytes | None:
        entry = self._store.get(key)
        if entry is None:
            return None
        expires_at, payload = entry
        if expires_at < time.monotonic():
            del self._store[key]
            return None
        self._store.move_to_end(key)
        return payload

    async def store(self, key: str, payload: bytes) -> None:
        self._store[key] = (time.monotonic() + self._ttl_s, payload)
        self._store.move_to_end(key)
        while len(self._store) > self._entries:
            self._store.popitem(last=False)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._store.clear()


# What a Redis call can fail with; the cluster client's own errors (a slot no node serves, a node that turned
# out not to be in cluster mode) are not RedisErrors.
_UNAVAILABLE = (RedisError, RedisClusterException, OSError)


class _CacheCluster(RedisCluster):
    """The cluster client, retrying what the single-node client retries: a broken connection, once and at once
    (after re-reading the slot map, so a restarted or replaced node is found). Not a timeout (it already
    waited) and not CLUSTERDOWN: each of those costs the caller another wait, and an answer without the cache
    is better than a late one."""

    ERRORS_ALLOW_RETRY = (RedisConnectionError,)


class RedisCache:
    """The ranking cache in one Redis server, or, with `cluster`, in a Redis Cluster that `url` names one
    node of (the client learns the others and follows MOVED and ASK redirects as slots move)."""

    name = "redis"

    def __init__(self, url: str, *, ttl_s: int, timeout_s: float, cluster: bool = False) -> None:
        self._redis = _cluster_client(url, timeout_s) if cluster else _server_client(url, timeout_s)
        self._ttl_s = ttl_s

    async def lookup(self, key: str) -> bytes | None:
        try:
            return await self._redis.get(key)
        except _UNAVAILABLE as e:
            raise CacheUnavailableError(f"Redis: {e}") from e

    async def store(self, key: str, payload: bytes) -> None:
        try:
            await self._redis.set(key, payload, ex=self._ttl_s)
        except _UNAVAILABLE as e:
            raise CacheUnavailableError(f"Redis: {e}") from e

    async def ping(self) -> None:
        try:
            if isinstance(self._redis, RedisCluster):
                # Every master: a cluster that lost one cannot serve that master's share of the keys.
                await self._redis.ping(target_nodes=RedisCluster.PRIMARIES)
            else:
                await self._redis.ping()
        except _UNAVAILABLE as e:
            raise CacheUnavailableError(f"Redis: {e}") from e

    async def close(self) -> None:
        await self._redis.aclose()


def _server_client(url: str, timeout_s: float) -> aioredis.Redis:
    # One immediate retry on a broken connection: after Redis restarts, every pooled connection is dead and
    # the first use of each would otherwise fail a request. A timeout is not retried (it already waited).
    return aioredis.Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry_on_timeout=False,
        retry=Retry(NoBackoff(), retries=1),
        retry_on_error=[RedisConnectionError],
    )


def _cluster_client(url: str, timeout_s: float) -> RedisCluster:
    """The cluster client, after checking (at startup, so a wrong setting stops the server) that `url` names a
    cluster node. A node out of reach now is no reason to refuse: the cache degrades until it is back."""
    where = _address(url)
    try:
        client = _CacheCluster.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, retry=Retry(NoBackoff(), retries=1)
        )
    except RedisClusterException as e:  # a database other than 0, a Unix socket
        raise ConfigError(f"KGRANK_REDIS_URL ({where}) cannot name a Redis Cluster node: {e}") from e
    with redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s) as probe:
        try:
            enabled = probe.info("cluster").get("cluster_enabled")
        except _UNAVAILABLE as e:
            logger.warning("Redis Cluster node %s not usable at startup (the cache is off until it is): %s", where, e)
            return client
    if not enabled:
        raise ConfigError(
            f"KGRANK_REDIS_CLUSTER is on, but the Redis at {where} is not a cluster node (cluster_enabled:0): "
            "point KGRANK_REDIS_URL at a node of the cluster, or unset KGRANK_REDIS_CLUSTER for a single server"
        )
    return client


def _address(url: str) -> str:
    """host:port of a Redis URL, without the credentials it may hold."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 6379}"
