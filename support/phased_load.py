"""Load for fault tests and the fault benchmark: clients posting /rank back to back from threads, and
optionally writers posting /interactions, each answer tagged with the phase (e.g. "neo4j down") it was
sent in.

Rank requests rotate over three kinds: a dataset user, a user never seen before (a sure cache miss and
graph round trip, so a dependency's outage is met at once), and one of the writers' live users (the
answers that can go stale). `stale_fresh()` counts the answers marked fresh (not degraded) whose user
version is behind one the API had already acknowledged to a writer before the request was sent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

LIVE_USERS = 4


@dataclass(frozen=True)
class Answer:
    phase: str
    status: int  # 0: no HTTP answer at all (timeout, reset)
    degraded: tuple[str, ...]
    ranked_by: str | None
    seconds: float
    finished: float  # time.monotonic()
    user_id: str = ""
    user_version: int | None = None
    model_version: str | None = None
    ranking: tuple[tuple[str, float], ...] = ()  # (item id, score) in the answer's order

    @property
    def sent(self) -> float:
        return self.finished - self.seconds


@dataclass(frozen=True)
class Write:
    phase: str
    status: int
    user_id: str
    user_version: int | None
    seconds: float
    finished: float  # time.monotonic(): the acknowledgement, when status is 200


class PhasedLoad:
    def __init__(
        self,
        url: str,
        requests: list[dict[str, Any]],
        *,
        clients: int = 1,
        writers: int = 0,
        items: list[str] | None = None,
        headers: dict[str, str] | None = None,
        timeout_s: float = 30,
    ) -> None:
        if writers and not items:
            raise ValueError("writers need items to post")
        self.phase = "normal"
        self.answers: list[Answer] = []
        self.writes: list[Write] = []
        self._url, self._requests, self._items, self._timeout_s = url, requests, items or [], timeout_s
        self._headers = headers or {}
        self._stop = threading.Event()
        self._turn = 0
        self._lock = threading.Lock()
        self.phase_started: dict[str, float] = {}
        self._phase_ended: dict[str, float] = {}
        self._live = [f"live-{n}-{time.time_ns()}" for n in range(LIVE_USERS if writers else 0)]
        self._threads = [threading.Thread(target=self._rank, daemon=True) for _ in range(clients)]
        self._threads += [threading.Thread(target=self._write, args=(n,), daemon=True) for n in range(writers)]

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

    def until(self, phase: str, done: Callable[[Answer], bool], *, timeout_s: float, at_least: int = 3) -> None:
        """Run `phase` until `at_least` answers in a row sent in it satisfy `done` (bounded by `timeout_s`):
        a recovery waited for, not guessed by the clock."""
        self.phase_started[phase] = time.monotonic()
        self.phase = phase
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            recent = self.sent_in(phase)[-at_least:]
            if len(recent) == at_least and all(done(answer) for answer in recent):
                break
            time.sleep(0.05)
        self._phase_ended[phase] = time.monotonic()

    def sent_in(self, phase: str) -> list[Answer]:
        return [answer for answer in self.answers if answer.phase == phase]

    def within(self, phase: str) -> list[Answer]:
        """Sent and answered during `phase`: not the requests still in flight when the next phase began."""
        return [answer for answer in self.sent_in(phase) if answer.finished <= self._phase_ended[phase]]

    def writes_in(self, phase: str) -> list[Write]:
        return [write for write in self.writes if write.phase == phase]

    def writes_within(self, phase: str) -> list[Write]:
        """Sent and answered during `phase` (see `within`)."""
        return [write for write in self.writes_in(phase) if write.finished <= self._phase_ended[phase]]

    def stale_fresh(self) -> list[Answer]:
        """Fresh-marked answers missing an interaction acknowledged before they were asked for."""
        stale = []
        for answer in self.answers:
            if answer.status != 200 or answer.degraded or answer.user_id not in self._live:
                continue
            acknowledged = [
                w.user_version or 0
                for w in self.writes
                if w.user_id == answer.user_id and w.status == 200 and w.finished < answer.sent
            ]
            if acknowledged and (answer.user_version is None or answer.user_version < max(acknowledged)):
                stale.append(answer)
        return stale

    def _next_body(self) -> dict[str, Any]:
        with self._lock:
            turn, self._turn = self._turn, self._turn + 1
        body = self._requests[turn % len(self._requests)]
        kind = turn % 3 if self._live else turn % 2
        if kind == 1:
            return body | {"user_id": f"load-{turn}-{time.time_ns()}"}
        if kind == 2:
            return body | {"user_id": self._live[turn % len(self._live)]}
        return body

    def _rank(self) -> None:
        with httpx.Client(base_url=self._url, timeout=self._timeout_s, headers=self._headers) as client:
            while not self._stop.is_set():
                phase, body, started = self.phase, self._next_body(), time.perf_counter()
                answer: dict[str, Any] = {}
                try:
                    response = client.post("/rank", json=body)
                    status = response.status_code
                    if status == 200:
                        answer = response.json()
                except httpx.HTTPError:
                    status = 0
                seconds = time.perf_counter() - started
                self.answers.append(
                    Answer(
                        phase,
                        status,
                        tuple(answer.get("degraded", ())),
                        answer["model"]["ranked_by"] if answer else None,
                        seconds,
                        time.monotonic(),
                        body["user_id"],
                        answer.get("user_version"),
                        answer["model"]["version"] if answer else None,
                        tuple((item["item_id"], item["score"]) for item in answer.get("ranking", ())),
                    )
                )

    def _write(self, writer: int) -> None:
        with httpx.Client(base_url=self._url, timeout=self._timeout_s, headers=self._headers) as client:
            count = 0
            while not self._stop.is_set():
                user = self._live[(writer + count) % len(self._live)]
                body = {"user_id": user, "item_id": self._items[count % len(self._items)], "rating": 4.0}
                phase, started = self.phase, time.perf_counter()
                version = None
                try:
                    response = client.post("/interactions", json=body)
                    status = response.status_code
                    if status == 200:
                        version = response.json()["user_version"]
                except httpx.HTTPError:
                    status = 0
                self.writes.append(Write(phase, status, user, version, time.perf_counter() - started, time.monotonic()))
                count += 1
                time.sleep(0.05)  # a steady trickle of events, not a write storm
