"""How uvicorn runs the app: a deadline for a request's headers and a cap on connections.

uvicorn closes idle keep-alive connections, but waits forever for a client that opened a connection and
sends its headers slowly or never: a few hundred such clients would hold the process's sockets.
`GuardedH11Protocol` closes a connection whose request headers are not complete within
KGRANK_REQUEST_READ_TIMEOUT_S (the body has the same deadline in services/api/limits.py) and closes
connections beyond KGRANK_MAX_CONNECTIONS at once (one request at a time per connection, so that also
caps the requests in flight).
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from services.core.settings import Settings


class GuardedH11Protocol(H11Protocol):
    read_timeout_s = 10.0
    max_connections = 1000

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            transport.abort()
            return
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # Headers complete (a request cycle is running): the body deadline takes over; else keep waiting.
        if self.cycle is not None and not self.cycle.response_complete:
            self._disarm()
        elif self._header_deadline is None and not self.transport.is_closing():
            self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._disarm()  # idle keep-alive connections have uvicorn's own timeout

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._header_deadline = self.loop.call_later(self.read_timeout_s, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self.cycle is None or self.cycle.response_complete:
            self.transport.abort()


def server_config(app: FastAPI, settings: Settings, *, host: str, port: int, log_level: str) -> uvicorn.Config:
    protocol = type(
        "KgrankH11Protocol",
        (GuardedH11Protocol,),
        {"read_timeout_s": settings.request_read_timeout_s, "max_connections": settings.max_connections},
    )
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        http=protocol,
        timeout_keep_alive=5,
    )
