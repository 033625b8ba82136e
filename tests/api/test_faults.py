"""Dependencies dying under load: Neo4j, then Redis, then vLLM cut (and vLLM made too slow) and restored
behind proxies while requests flow.

The API must keep answering 200 (degraded and saying so), never hang past its timeouts, and recover by
itself once each dependency is back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlparse

import pytest

from services.api.app import build_service, create_app
from services.api.local import serve_in_thread
from services.core.settings import Settings
from support.fake_vllm import FakeVLLM
from support.phased_load import Answer, PhasedLoad
from support.proxy import ToggleProxy
from tests.api.conftest import Served, candidates_for


@contextmanager
def under_load(served: Served, settings: Settings, *, clients: int = 1, writers: int = 0) -> Iterator[PhasedLoad]:
    """The API on `settings`, with `clients` posting /rank for the first 12 users, 8 candidates each, and
    `writers` posting interactions for live users."""
    requests = [
        {"user_id": served.dataset.user_id(u), "candidates": candidates_for(served, u, 8)} for u in range(1, 13)
    ]
    items = [item.id for item in served.dataset.items[:30]]
    with (
        serve_in_thread(create_app(settings, service=build_service(settings))) as url,
        PhasedLoad(url, requests, clients=clients, writers=writers, items=items) as load,
    ):
        yield load


def healthy(answer: Answer) -> bool:
    return answer.status == 200 and answer.degraded == ()


@pytest.mark.neo4j
@pytest.mark.redis
def test_the_api_rides_out_neo4j_and_redis_going_away(
    served: Served, neo4j_served: dict[str, object], redis_url: str
) -> None:
    """Recoveries are waited for (a few healthy answers in a row), never guessed by the clock; the deadlines
    are far above what a healthy server needs, so a slow moment on a busy machine is not a fault."""
    neo4j_port = urlparse(str(neo4j_served["neo4j_uri"])).port or 7687
    redis = urlparse(redis_url)
    with ToggleProxy(neo4j_port) as neo4j_proxy, ToggleProxy(redis.port or 6379) as redis_proxy:
        settings = served.settings(
            neo4j_uri=f"bolt://127.0.0.1:{neo4j_proxy.port}",
            neo4j_password=neo4j_served["neo4j_password"],
            neo4j_timeout_s=5,
            redis_url=f"redis://127.0.0.1:{redis_proxy.port}{redis.path}",
            redis_timeout_s=1,
            retry_after_s=1,
            open_writes=True,
        )
        with under_load(served, settings, writers=1) as load:
            load.until("warm-up", healthy, timeout_s=60)  # e.g. a Neo4j just restarted by another test
            load.during("normal", 3)
            neo4j_proxy.cut()
            load.during("neo4j down", 4)
            neo4j_proxy.restore()
            load.until("neo4j back", lambda a: a.status == 200 and "graph" not in a.degraded, timeout_s=30)
            load.during("neo4j recovered", 2)
            redis_proxy.cut()
            load.during("redis down", 3)
            redis_proxy.restore()
            load.until("redis back", healthy, timeout_s=30)
            load.during("redis recovered", 2)

    everything = load.answers
    assert everything and all(a.status == 200 for a in everything), {(a.phase, a.status) for a in everything}
    assert max(a.seconds for a in everything) < 6, "a request hung past the graph deadline (5 s)"
    for phase in ("normal", "neo4j recovered", "redis recovered"):
        answers = load.within(phase)
        assert answers and [a for a in answers if not healthy(a)] == [], phase
    # Misses go on without the graph and say so; after the first failure they skip it at once.
    assert sum("graph" in a.degraded for a in load.sent_in("neo4j down")) >= 3
    redis_down = load.within("redis down")
    assert redis_down and [a for a in redis_down if "cache" not in a.degraded] == []
    # Writes: acknowledged while Neo4j is up, refused at once (503) while it is down, never lost or stale.
    assert {w.status for w in load.writes_within("normal")} == {200}
    down_writes = load.writes_in("neo4j down")
    assert down_writes and {w.status for w in down_writes} == {503}
    assert max(w.seconds for w in down_writes) < 5, "a write waited out the graph deadline"
    assert {w.status for w in load.writes_within("redis down")} == {200}  # the cache plays no part in a write
    assert sum(a.user_id.startswith("live-") and healthy(a) for a in everything) >= 10
    assert load.stale_fresh() == []


def test_the_api_rides_out_vllm_dying_and_stalling(served: Served) -> None:
    vllm = FakeVLLM(served.bundle.ranker)
    with vllm.serving() as vllm_url, ToggleProxy(urlparse(vllm_url).port or 80) as proxy:
        settings = served.settings(
            scorer="vllm", vllm_url=f"http://127.0.0.1:{proxy.port}", scorer_timeout_s=1, retry_after_s=1
        )
        with under_load(served, settings, clients=2) as load:
            load.during("normal", 3)
            proxy.cut()
            load.during("vllm down", 3)
            proxy.restore()
            load.during("vllm back", 2)
            load.during("vllm recovered", 2)
            vllm.delay_s = 3  # up, but slower than scorer_timeout_s
            load.during("vllm stalls", 4)
            vllm.delay_s = 0
            load.during("vllm fast again", 4)  # requests stalled inside vLLM drain first
            load.during("vllm fast recovered", 2)

    everything = load.answers
    assert everything and all(a.status == 200 for a in everything), {(a.phase, a.status) for a in everything}
    # The scorer's deadline (1 s) plus graph and prompt work; never the 3 s a stalled vLLM takes.
    assert max(a.seconds for a in everything) < 2.5, "a request waited out the stalled scorer"
    for phase in ("normal", "vllm recovered", "vllm fast recovered"):
        answers = load.within(phase)
        assert answers and all(a.degraded == () and a.ranked_by == "llm" for a in answers), (phase, answers[:3])
    for phase in ("vllm down", "vllm stalls"):
        answers = load.sent_in(phase)
        degraded = [a for a in answers if a.degraded]
        assert len(degraded) >= 3, (phase, answers)
        assert all(a.degraded == ("scorer",) and a.ranked_by == "preference module" for a in degraded)
    assert vllm.completions > 0
