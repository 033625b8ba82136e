"""Load for fault tests and the fault benchmark: clients posting /rank back to back from threads, each
answer tagged with the phase (e.g. "neo4j down") it was sent in."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Answer:
    phase: str
    status: int  # 0: no HTTP answer at all (timeout, reset)
    degraded: tuple[str, ...]
    ranked_by: str | None
    seconds: float
    finished: float  # time.monotonic()


class PhasedLoad:
    """`clients` threads, each sending one request after another. Every other request comes from a user never
    seen before: a sure cache miss and graph round trip, so a dependency's outage is met at once."""

    def __init__(self, url: str, requests: list[dict[str, Any]], *, clients: int = 1, timeout_s: float = 30) -> None:
        self.phase = "normal"
        self.answers: list[Answer] = []
        self._url, self._requests, self._timeout_s = url, requests, timeout_s
        self._stop = threading.Event()
        self._turn = 0
        self._lock = threading.Lock()
        self.phase_started: dict[str, float] = {}
        self._phase_ended: dict[str, float] = {}
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def __enter__(self) -> PhasedLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self._timeout_s + 5)

    def during(self, phase: str, seconds: float) -> None:
        self.phase_started[phase] = time.monotonic()
        self.phase = phase
        time.sleep(seconds)
        self._phase_ended[phase] = time.monotonic()

    def sent_in(self, phase: str) -> list[Answer]:
        return [answer for answer in self.answers if answer.phase == phase]

    def within(self, phase: str) -> list[Answer]:
        """Sent and answered during `phase`: not the requests still in flight when the next phase began."""
        return [answer for answer in self.sent_in(phase) if answer.finished <= self._phase_ended[phase]]

    def _next_body(self) -> dict[str, Any]:
        with self._lock:
            turn, self._turn = self._turn, self._turn + 1
        body = self._requests[turn % len(self._requests)]
        return body | {"user_id": f"load-{turn}"} if turn % 2 else body

    def _run(self) -> None:
        with httpx.Client(base_url=self._url, timeout=self._timeout_s) as client:
            while not self._stop.is_set():
                phase, body, started = self.phase, self._next_body(), time.perf_counter()
                degraded: tuple[str, ...] = ()
                ranked_by = None
                try:
                    response = client.post("/rank", json=body)
                    status = response.status_code
                    if status == 200:
                        answer = response.json()
                        degraded, ranked_by = tuple(answer["degraded"]), answer["model"]["ranked_by"]
                except httpx.HTTPError:
                    status = 0
                self.answers.append(
                    Answer(phase, status, degraded, ranked_by, time.perf_counter() - started, time.monotonic())
                )
