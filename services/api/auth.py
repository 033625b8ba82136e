"""Who may call: the API key, writes closed unless a key or the explicit open flag, per-caller write limits.

With KGRANK_API_KEY set, /rank and /interactions need it in X-API-Key; admin endpoints always do. Without
one, reads are open and writes are refused unless the server was started with --open-writes
(KGRANK_OPEN_WRITES=true), meant for a local demo. Writes are rate-limited per caller (the key, or the
client address when open): a token bucket of KGRANK_WRITE_BURST events refilled at
KGRANK_WRITE_RATE_PER_S, per API process.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader

from services.core.errors import KgrankError
from services.core.settings import Settings
from services.ranker.serving.contract import API_KEY_HEADER_NAME

API_KEY_HEADER = APIKeyHeader(name=API_KEY_HEADER_NAME, auto_error=False)


class UnauthorizedError(KgrankError):
    """401: a key is configured and the request's is missing or wrong."""


class WritesClosedError(KgrankError):
    """403: no key is configured and the server was not started open for writes."""


class RateLimitedError(KgrankError):
    """429: the caller wrote faster than its budget; `details["retry_after_s"]` says when to come back."""


class TokenBuckets:
    """One bucket per caller; the least recently used are forgotten beyond `callers` (a full bucket again)."""

    def __init__(self, *, rate_per_s: float, burst: int, callers: int = 10_000) -> None:
        self._rate, self._burst, self._callers = rate_per_s, burst, callers
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # caller -> (tokens, at)

    def take(self, caller: str) -> float:
        """0 if the caller may write now (one token taken); else the seconds until it may."""
        now = time.monotonic()
        tokens, at = self._buckets.pop(caller, (float(self._burst), now))
        tokens = min(float(self._burst), tokens + (now - at) * self._rate)
        wait = 0.0 if tokens >= 1 else (1 - tokens) / self._rate
        self._buckets[caller] = (tokens - 1 if wait == 0 else tokens, now)
        while len(self._buckets) > self._callers:
            self._buckets.popitem(last=False)
        return wait


class Access:
    """The two FastAPI dependencies: `key` on every ranking endpoint, `write` on every write."""

    def __init__(self, settings: Settings) -> None:
        self._expected = settings.api_key.get_secret_value().encode() if settings.api_key else None
        self._open_writes = settings.open_writes
        self._buckets = TokenBuckets(rate_per_s=settings.write_rate_per_s, burst=settings.write_burst)
        self.key = self._key_dependency()
        self.write = self._write_dependency()
        self.admin = self._admin_dependency()

    def has_key(self, presented: str | None) -> bool:
        """Whether the caller showed the configured key (never true when none is configured)."""
        if self._expected is None or presented is None:
            return False
        return hmac.compare_digest(presented.encode(), self._expected)

    def _key_dependency(self) -> Callable[..., Awaitable[None]]:
        async def check(key: str | None = Depends(API_KEY_HEADER)) -> None:
            if self._expected is not None and not self.has_key(key):
                raise UnauthorizedError("missing or wrong X-API-Key")

        return check

    def _write_dependency(self) -> Callable[..., Awaitable[None]]:
        async def check(request: Request, key: str | None = Depends(API_KEY_HEADER)) -> None:
            if self._expected is None and not self._open_writes:
                _refused(request, "closed")
                raise WritesClosedError(
                    "writes are closed: this server has no API key; start it with KGRANK_API_KEY set (clients send "
                    "the key as X-API-Key), or with --open-writes (KGRANK_OPEN_WRITES=true) for a local demo"
                )
            if self._expected is not None and not self.has_key(key):
                raise UnauthorizedError("missing or wrong X-API-Key")
            caller = (
                "key:" + hashlib.sha256(key.encode()).hexdigest()[:16]
                if key is not None and self._expected is not None
                else "client:" + (request.client.host if request.client else "unknown")
            )
            wait = self._buckets.take(caller)
            if wait > 0:
                _refused(request, "rate_limited")
                raise RateLimitedError(
                    "too many writes from this caller (KGRANK_WRITE_RATE_PER_S, KGRANK_WRITE_BURST); retry later",
                    retry_after_s=wait,
                )

        return check

    def _admin_dependency(self) -> Callable[..., Awaitable[None]]:
        async def check(key: str | None = Depends(API_KEY_HEADER)) -> None:
            if self._expected is None:
                raise WritesClosedError(
                    "admin endpoints need KGRANK_API_KEY (sent as X-API-Key); --open-writes does not open them"
                )
            if not self.has_key(key):
                raise UnauthorizedError("missing or wrong X-API-Key")

        return check


def _refused(request: Request, reason: str) -> None:
    """Count a refused write in the running service's metrics."""
    service = getattr(request.app.state, "service", None)
    if service is not None:
        service.metrics.write_refusals.labels(reason).inc()


def retry_after_header(seconds: float) -> str:
    """Retry-After takes whole seconds: round up, never 0 (that would invite an immediate retry storm)."""
    return str(max(1, math.ceil(seconds)))
