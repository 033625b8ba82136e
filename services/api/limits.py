"""Caps on what a client may send: 413 for a body too large to be a request, 408 for one that does not
arrive in time (a slow or stalled client must not hold a worker)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodySizeLimit:
    """Pure ASGI middleware. A declared Content-Length over the cap is refused at once; a body without one
    (chunked) is read up to the cap and handed on whole, or refused as soon as it passes the cap. The whole
    body must arrive within `read_timeout_s`."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, read_timeout_s: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.read_timeout_s = read_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(send, 413, f"request body over {self.max_bytes} bytes")
            return
        body = bytearray()
        pending: Message | None = None  # a disconnect that arrived instead of the body
        try:
            async with asyncio.timeout(self.read_timeout_s):
                while True:
                    message = await receive()
                    if message["type"] != "http.request":
                        pending = message
                        break
                    body += message.get("body", b"")
                    if len(body) > self.max_bytes:
                        await self._refuse(send, 413, f"request body over {self.max_bytes} bytes")
                        return
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            await self._refuse(send, 408, f"request body not received within {self.read_timeout_s:g} s")
            return
        await self.app(scope, _replay(bytes(body), pending, receive), send)

    async def _refuse(self, send: Send, status: int, message: str) -> None:
        payload = json.dumps({"error": message, "item_ids": None}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def _replay(body: bytes, pending: Message | None, receive: Receive) -> Receive:
    """A receive that gives the buffered body first, then whatever the client sends next."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return pending if pending is not None else {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
