"""The API on a free loopback port in a background thread: for the demo and the latency benchmark."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

from services.api.server import server_config
from services.core.errors import KgrankError
from services.core.settings import Settings


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serve_in_thread(app: FastAPI, *, startup_timeout_s: float = 120) -> Iterator[str]:
    """Yield the base URL while uvicorn serves `app`; shut it down when the block ends."""
    port = free_port()
    settings = getattr(app.state, "settings", None) or Settings()  # kgrank's app carries its own; a stand-in not
    server = uvicorn.Server(server_config(app, settings, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout_s
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise KgrankError("the API did not start (see the log above)")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
