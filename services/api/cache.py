"""Cached rankings, keyed so that a stale one can never be found: no scans, no deletes.

A key holds the user, the user's version counter and a digest of the request (which covers the model
version and the graph version). A new interaction increments the user's counter, so every ranking cached
before it becomes unreachable at once and expires by TTL. If the increment cannot reach Redis, the
user is remembered and incremented before any later lookup for that user; until then lookups for that
user miss.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import Protocol, cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from services.core.errors import KgrankError


class CacheUnavailableError(KgrankError):
    """The cache could not be asked; the caller answers uncached and says so."""


def user_digest(user_id: str) -> str:
    return hashlib.sha256(user_id.encode()).hexdigest()[:24]


class RankingCache(Protocol):
    """`lookup` returns the slot for this user's current version; `store` writes into that same slot, so a
    ranking computed while an interaction arrived lands under the old version, where no one looks."""

    name: str

    async def lookup(self, user_id: str, request_digest: str) -> tuple[Hashable, bytes | None]: ...

    async def store(self, slot: Hashable, payload: bytes) -> None: ...

    async def invalidate(self, user_id: str) -> None:
        """Make every cached ranking of the user unreachable; CacheUnavailableError if that failed for now."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class MemoryCache:
    """An in-process LRU with TTL: the cache when no Redis is configured."""

    name = "memory"

    def __init__(self, *, entries: int, ttl_s: float) -> None:
        self._entries = entries
        self._ttl_s = ttl_s
        self._store: OrderedDict[tuple[str, int, str], tuple[float, bytes]] = OrderedDict()
        self._versions: dict[str, int] = {}

    async def lookup(self, user_id: str, request_digest: str) -> tuple[Hashable, bytes | None]:
        key = (user_id, self._versions.get(user_id, 0), request_digest)
        entry = self._store.get(key)
        if entry is None:
            return key, None
        expires_at, payload = entry
        if expires_at < time.monotonic():
            del self._store[key]
            return key, None
        self._store.move_to_end(key)
        return key, payload

    async def store(self, slot: Hashable, payload: bytes) -> None:
        key = cast(tuple[str, int, str], slot)
        self._store[key] = (time.monotonic() + self._ttl_s, payload)
        self._store.move_to_end(key)
        while len(self._store) > self._entries:
            self._store.popitem(last=False)

    async def invalidate(self, user_id: str) -> None:
        self._versions[user_id] = self._versions.get(user_id, 0) + 1

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._store.clear()


class RedisCache:
    name = "redis"

    def __init__(self, url: str, *, ttl_s: int, timeout_s: float) -> None:
        self._redis = aioredis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, retry_on_timeout=False
        )
        self._ttl_s = ttl_s
        self._unflushed: set[str] = set()  # users whose invalidation has not reached Redis yet

    @staticmethod
    def _version_key(user: str) -> str:
        return f"kgrank:v1:user-version:{user}"

    async def _entry_key(self, user_id: str, request_digest: str) -> str:
        user = user_digest(user_id)
        if user_id in self._unflushed:
            await self._redis.incr(self._version_key(user))
            self._unflushed.discard(user_id)
        version = await self._redis.get(self._version_key(user))
        return f"kgrank:v1:rank:{user}:{int(version or 0)}:{request_digest}"

    async def lookup(self, user_id: str, request_digest: str) -> tuple[Hashable, bytes | None]:
        try:
            key = await self._entry_key(user_id, request_digest)
            return key, await self._redis.get(key)
        except (RedisError, OSError) as e:
            raise CacheUnavailableError(f"Redis: {e}") from e

    async def store(self, slot: Hashable, payload: bytes) -> None:
        try:
            await self._redis.set(cast(str, slot), payload, ex=self._ttl_s)
        except (RedisError, OSError) as e:
            raise CacheUnavailableError(f"Redis: {e}") from e

    async def invalidate(self, user_id: str) -> None:
        try:
            await self._redis.incr(self._version_key(user_digest(user_id)))
        except (RedisError, OSError) as e:
            self._unflushed.add(user_id)
            raise CacheUnavailableError(f"Redis: {e}") from e

    async def ping(self) -> None:
        try:
            await self._redis.ping()
        except (RedisError, OSError) as e:
            raise CacheUnavailableError(f"Redis: {e}") from e

    async def close(self) -> None:
        await self._redis.aclose()
