"""Faults under load: Neo4j, then Redis, then vLLM cut (and vLLM stalled) and restored while clients post /rank
and a writer posts /interactions.

    source .neo4j/env && .venv/bin/python -m benchmarks.faults --data DATA --model MODEL_DIR --retriever RUN \
        --redis-url redis://127.0.0.1:6379/1 [--clients 4] [--writers 1] [--phase-seconds 10]
Writes benchmarks/results/ml-latest-small/faults.{json,md}.

The API ranks on the Neo4j of KGRANK_NEO4J_* (DATA loaded already), caches in Redis (a scratch database: it
is flushed) and scores with vLLM: here the stand-in of support/fake_vllm.py, which answers vLLM's
protocol with the checkpoint's own scores. Each dependency sits behind a TCP proxy (support/proxy.py)
that the run cuts and restores, so the shared servers are never touched. Per phase: requests sent, how
they were answered (200, 5xx, no answer), degraded answers by reason, who ranked, client-side latency; the
writes (acknowledged, refused with 503, their latency); and stale-fresh answers: answers marked fresh (not
degraded) whose user version is behind one the API had acknowledged to the writer before the request was sent.
"""

from __future__ import annotations

import argparse
from collections import Counter
from typing import Any
from urllib.parse import urlparse

from benchmarks.common import (
    command_line,
    environment,
    markdown_table,
    neo4j_server_version,
    percentiles,
    served_model_arguments,
    write_results,
)
from benchmarks.serving_latency import requests_for
from services.api.app import build_service, create_app
from services.api.local import serve_in_thread
from services.core.settings import Settings
from services.graph_loader.dataset import ProcessedDataset
from support.fake_vllm import FakeVLLM
from support.phased_load import Answer, PhasedLoad, Write
from support.proxy import ToggleProxy

# Tighter than the defaults so that a 10 s phase shows both the first timeout and the fast fallback after it.
FAULT_SETTINGS = {"neo4j_timeout_s": 2.0, "redis_timeout_s": 0.3, "scorer_timeout_s": 2.0, "retry_after_s": 2.0}
STALL_S = 5.0  # how long the stalled vLLM takes per completion: longer than scorer_timeout_s


def summarize(answers: list[Answer]) -> dict[str, Any]:
    statuses = Counter(a.status for a in answers)
    latencies = [a.seconds * 1000 for a in answers]
    return {
        "sent": len(answers),
        "ok_200": statuses.get(200, 0),
        "server_errors_5xx": sum(n for s, n in statuses.items() if s >= 500),
        "no_answer": statuses.get(0, 0),
        "other_status": {str(s): n for s, n in statuses.items() if s not in (0, 200) and s < 500},
        "degraded": sum(bool(a.degraded) for a in answers),
        "degraded_by_reason": dict(Counter(reason for a in answers for reason in a.degraded)),
        "ranked_by": dict(Counter(a.ranked_by for a in answers if a.ranked_by)),
        "latency_ms": percentiles(latencies) | {"max": round(max(latencies), 3)},
    }


def summarize_writes(writes: list[Write]) -> dict[str, Any]:
    latencies = [w.seconds * 1000 for w in writes]
    return {
        "sent": len(writes),
        "statuses": {str(s): n for s, n in sorted(Counter(w.status for w in writes).items())},
        "latency_ms": (percentiles(latencies) | {"max": round(max(latencies), 3)}) if latencies else {},
    }


def last_degraded(load: PhasedLoad, phase: str) -> float | None:
    """Seconds into `phase` at which the last request answered degraded within it was sent: after a restore,
    how long recovery took. Requests still in flight when the next fault began are left out."""
    started = load.phase_started[phase]
    sent = [a.finished - a.seconds - started for a in load.within(phase) if a.degraded]
    return round(max(sent), 2) if sent else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    served_model_arguments(parser)
    parser.add_argument("--redis-url", required=True, help="a scratch database: it is flushed")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--writers", type=int, default=1, help="threads posting interactions for live users")
    parser.add_argument("--phase-seconds", type=float, default=10.0)
    parser.add_argument("--users", type=int, default=200)
    args = parser.parse_args()

    import redis

    redis.Redis.from_url(args.redis_url).flushdb()
    server = Settings()
    if not server.neo4j_uri:
        raise SystemExit("needs Neo4j: `make neo4j-up` then `source .neo4j/env`")
    dataset = ProcessedDataset.load(args.data)
    requests = requests_for(dataset, args.retriever, args.users)
    neo4j_port, redis_target = urlparse(server.neo4j_uri).port or 7687, urlparse(args.redis_url)
    vllm = FakeVLLM(args.model)
    seconds = args.phase_seconds
    with (
        vllm.serving() as vllm_url,
        ToggleProxy(neo4j_port) as neo4j,
        ToggleProxy(redis_target.port or 6379) as cache,
        ToggleProxy(urlparse(vllm_url).port or 80) as scorer,
    ):
        settings = Settings(
            dataset_dir=args.data,
            model_dir=args.model,
            retriever_dir=args.retriever,
            neo4j_uri=f"bolt://127.0.0.1:{neo4j.port}",
            neo4j_password=server.neo4j_password,
            redis_url=f"redis://127.0.0.1:{cache.port}{redis_target.path}",
            scorer="vllm",
            vllm_url=f"http://127.0.0.1:{scorer.port}",
            api_key=None,
            open_writes=True,  # loopback only, behind the proxies
            **FAULT_SETTINGS,
        )
        app = create_app(settings, service=build_service(settings))
        items = [item.id for item in dataset.items[:50]]
        with (
            serve_in_thread(app) as url,
            PhasedLoad(url, requests, clients=args.clients, writers=args.writers, items=items) as load,
        ):
            steps = [
                ("normal", None),
                ("neo4j down", neo4j.cut),
                ("neo4j back", neo4j.restore),
                ("redis down", cache.cut),
                ("redis back", cache.restore),
                ("vllm down", scorer.cut),
                ("vllm back", scorer.restore),
                ("vllm stalls", lambda: setattr(vllm, "delay_s", STALL_S)),
                ("vllm fast again", lambda: setattr(vllm, "delay_s", 0.0)),
            ]
            for phase, action in steps:
                print(f"{phase} ({seconds:g} s)", flush=True)
                if action:
                    action()
                load.during(phase, seconds)
    phases = {
        phase: summarize(load.sent_in(phase))
        | {"last_degraded_s": last_degraded(load, phase), "writes": summarize_writes(load.writes_in(phase))}
        for phase, _ in steps
    }
    stale = load.stale_fresh()
    total = summarize(load.answers) | {
        "writes": summarize_writes(load.writes),
        "stale_fresh_answers": len(stale),
        "live_user_answers_fresh": sum(1 for a in load.answers if a.user_id.startswith("live-") and not a.degraded),
    }
    payload = {
        "command": command_line("benchmarks.faults", args),
        "environment": environment(neo4j_server_version(server)),
        "settings": FAULT_SETTINGS
        | {"stall_s": STALL_S, "clients": args.clients, "writers": args.writers, "phase_seconds": seconds},
        "phases": phases,
        "total": total,
    }
    down_write_max = phases["neo4j down"]["writes"]["latency_ms"].get("max", "-")
    rows = [
        [
            phase,
            p["sent"],
            p["ok_200"],
            p["server_errors_5xx"],
            p["no_answer"],
            p["degraded"],
            ", ".join(f"{k} {v}" for k, v in sorted(p["degraded_by_reason"].items())) or "-",
            "-" if p.get("last_degraded_s") is None else p["last_degraded_s"],
            ", ".join(f"{k} {v}" for k, v in sorted(p["ranked_by"].items())),
            p["latency_ms"]["p50"],
            p["latency_ms"]["p99"],
            p["latency_ms"]["max"],
            p["writes"]["sent"],
            ", ".join(f"{k} {v}" for k, v in sorted(p["writes"]["statuses"].items())) or "-",
            p["writes"]["latency_ms"].get("max", "-"),
        ]
        for phase, p in [*phases.items(), ("all", total)]
    ]
    markdown = (
        f"# POST /rank while its dependencies fail\n\n`{payload['command']}` on {payload['environment']['machine']}, "
        f"{payload['environment']['date']}.\n{args.clients} clients back to back, their requests rotating over a "
        f"dataset user, a new user (a sure cache miss) and one of the live users {args.writers} writer(s) post "
        f"interactions for (about 20 a second); {seconds:g} s per phase; Neo4j, Redis and vLLM (stand-in scoring "
        f"with the checkpoint) each behind a proxy that is cut and restored; 'vllm stalls' answers after "
        f"{STALL_S:g} s. Settings: {', '.join(f'{k} {v:g}' for k, v in FAULT_SETTINGS.items())}. A phase counts "
        "the requests sent in it, so the last requests of a phase may meet the next fault. While the graph is "
        "down no cached answer is served (the user's version cannot be read), so every answer says 'graph'. "
        "'last degraded at s': when, into the phase, the last request answered degraded within it was sent; after "
        "a restore, the time recovery took. Latencies seen by the client, in ms.\n\n"
        + markdown_table(
            [
                "phase",
                "sent",
                "200",
                "5xx",
                "no answer",
                "degraded",
                "degraded by",
                "last degraded at s",
                "ranked by",
                "p50",
                "p99",
                "max",
                "writes",
                "write statuses",
                "write max ms",
            ],
            rows,
        )
        + f"\n\nStale-fresh answers (marked fresh, user version behind an acknowledged write): "
        f"**{len(stale)}** of {total['live_user_answers_fresh']} fresh answers for the writer's live users. "
        f"Max write latency while Neo4j was down: **{down_write_max} ms**.\n"
    )
    write_results("ml-latest-small/faults", payload, markdown)


if __name__ == "__main__":
    main()
