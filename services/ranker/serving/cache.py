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
import time
from collections import OrderedDict
from typing import Protocol

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from services.core.errors import KgrankError


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


class RedisCache:
    name = "redis"

    def __init__(self, url: str, *, ttl_s: int, timeout_s: float) -> None:
        # One immediate retry on a broken connection: after Redis restarts, every pooled connection is dead and
        # the first use of each would otherwise fail a request. A timeout is not retried (it already waited).
        self._redis = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry_on_timeout=False,
            retry=Retry(NoBackoff(), retries=1),
            retry_on_error=[RedisConnectionError],
        )
        self._ttl_s = ttl_s

    async def lookup(self, key: str) -> bytes | None:
        try:
            return await self._redis.get(key)
        except (RedisError, OSError) as e:
            raise CacheUnavailableError(f"Redis: {e}") from e

    async def store(self, key: str, payload: bytes) -> None:
        try:
            await self._redis.set(key, payload, ex=self._ttl_s)
        except (RedisError, OSError) as e:
            raise CacheUnavailableError(f"Redis: {e}") from e

    async def ping(self) -> None:
        try:
            await self._redis.ping()
        except (RedisError, OSError) as e:
            raise CacheUnavailableError(f"Redis: {e}") from e

    async def close(self) -> None:
        await self._redis.aclose()
