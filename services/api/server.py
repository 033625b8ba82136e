"""How uvicorn runs the app: a deadline for a request's headers, a cap on connections, and worker processes.

uvicorn closes idle keep-alive connections, but waits forever for a client that opened a connection and
sends its headers slowly or never: a few hundred such clients would hold the process's sockets.
`GuardedH11Protocol` closes a connection whose request headers are not complete within
KGRANK_REQUEST_READ_TIMEOUT_S (the body has the same deadline in services/api/limits.py) and closes
connections beyond KGRANK_MAX_CONNECTIONS at once (one request at a time per connection, so that also
caps the requests in flight). Both limits travel on `ServerConfig`, so every worker process applies them.

Several workers (`kgrank serve --workers N`) share one listening socket under uvicorn's supervisor, which
restarts a worker that dies and stops them all on SIGINT or SIGTERM. Each worker builds its own service
from the settings pickled with its config: its own model copy, its own in-process cache when there is no
Redis, its own write rate limits and connection cap.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.config import STARTUP_FAILURE
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.supervisors import Multiprocess

from services.api.app import build_service, create_app
from services.core.errors import KgrankError
from services.core.settings import Settings

WORKER_START_S = 60


class ServerConfig(uvicorn.Config):
    """uvicorn's config with kgrank's protocol and its limits. A module-level class with plain fields:
    uvicorn pickles the config into each worker process, so every worker runs exactly the same server."""

    def __init__(self, app: Any, settings: Settings, **options: Any) -> None:
        super().__init__(app, http=GuardedH11Protocol, timeout_keep_alive=5, **options)
        self.request_read_timeout_s = settings.request_read_timeout_s
        self.max_connections = settings.max_connections


class GuardedH11Protocol(H11Protocol):
    def __init__(self, config: ServerConfig, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self._read_timeout_s = config.request_read_timeout_s
        self._max_connections = config.max_connections
        self._header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self._max_connections:
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
        self._header_deadline = self.loop.call_later(self._read_timeout_s, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self.cycle is None or self.cycle.response_complete:
            self.transport.abort()


def server_config(app: FastAPI, settings: Settings, *, host: str, port: int, log_level: str) -> ServerConfig:
    """One server in this process, serving `app`."""
    return ServerConfig(app, settings, host=host, port=port, log_level=log_level)


def check_service(settings: Settings) -> None:
    """Build the service once, as every worker will, and close it: a bad setting or checkpoint fails here
    as one error before any worker starts, and the supervising process keeps no model."""
    asyncio.run(build_service(settings).close())


def serve_workers(settings: Settings, *, workers: int, host: str, port: int, log_level: str) -> None:
    """`workers` processes on one socket bound here; returns once all have stopped (SIGINT or SIGTERM)."""
    # A factory, so each worker builds its app and service (create_app's lifespan loads the models) from the
    # settings pickled with the config; a worker that cannot start stops the supervisor instead of looping.
    config = ServerConfig(
        partial(create_app, settings),
        settings,
        factory=True,
        workers=workers,
        # The supervisor counts a worker that does not answer its ping within this as hung and replaces it; a new
        # worker answers only once Python has started and imported torch, seconds on a busy machine.
        timeout_worker_healthcheck=WORKER_START_S,
        host=host,
        port=port,
        log_level=log_level,
    )
    socket = config.bind_socket()
    supervisor = Multiprocess(config, sockets=[socket])
    try:
        supervisor.run()
    finally:
        socket.close()
    if any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes):
        raise KgrankError("a worker failed to start (see its log above); every worker was stopped")
