"""A bounded load test of POST /rank on loopback: several concurrencies, a fixed number of requests each.

    .venv/bin/python -m benchmarks.load_test --data DATA --model MODEL_DIR --retriever RUN \
        [--requests 400] [--concurrency 1,4,16] [--users 200] [--neo4j] [--redis-url URL]
Writes benchmarks/results/ml-latest-small/load-{embedded,neo4j}-{memory,redis}.{json,md}.

Each level starts a fresh API (cold cache) and sends REQUESTS requests from CONCURRENCY async clients;
each request asks for the retriever's top 20 of a user drawn at random (seeded) from USERS test users,
so early requests miss the cache and later ones increasingly hit it. Reported: throughput, client-side
p50/p95/p99, non-200 answers, 5xx, degraded answers, cache hit ratio, mean scorer batch size.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import time
from typing import Any

import httpx

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


async def _drive(url: str, bodies: list[dict[str, Any]], concurrency: int) -> dict[str, Any]:
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    cached = degraded = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal cached, degraded
        while not queue.empty():
            body = queue.get_nowait()
            started = time.perf_counter()
            try:
                response = await client.post("/rank", json=body)
                status = response.status_code
            except httpx.HTTPError:
                status = 0  # no answer at all (timeout, connection reset)
            latencies.append((time.perf_counter() - started) * 1000)
            statuses[status] = statuses.get(status, 0) + 1
            if status == 200:
                answer = response.json()
                cached += answer["cached"]
                degraded += bool(answer["degraded"])

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        seconds = time.perf_counter() - started
        metrics = (await client.get("/metrics")).text
    batches = {
        name: float(value) for name, value in re.findall(r"^kgrank_scorer_batch_size_(sum|count) (\S+)$", metrics, re.M)
    }
    ok = statuses.get(200, 0)
    return {
        "requests": len(bodies),
        "seconds": round(seconds, 2),
        "throughput_rps": round(len(bodies) / seconds, 1),
        "latency_ms": percentiles(latencies),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": len(bodies) - ok,
        "server_errors": sum(v for k, v in statuses.items() if k >= 500 or k == 0),
        "degraded": degraded,
        "cache_hit_ratio": round(cached / ok, 3) if ok else 0.0,
        "mean_batch_size": round(batches["sum"] / batches["count"], 2) if batches.get("count") else None,
    }


def run_level(settings: Settings, bodies: list[dict[str, Any]], concurrency: int) -> dict[str, Any]:
    if settings.redis_url:
        import redis

        redis.Redis.from_url(settings.redis_url).flushdb()  # cold cache for every level (a scratch database)
    with serve_in_thread(create_app(settings, service=build_service(settings))) as url:
        return asyncio.run(_drive(url, bodies, concurrency))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    served_model_arguments(parser)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", default="1,4,16")
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--neo4j", action="store_true", help="rank on the Neo4j of KGRANK_NEO4J_* (loaded already)")
    parser.add_argument("--redis-url", help="cache in Redis (a scratch database: it is flushed)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    dataset = ProcessedDataset.load(args.data)
    pool = requests_for(dataset, args.retriever, args.users)
    rng = random.Random(args.seed)
    bodies = [rng.choice(pool) for _ in range(args.requests)]
    server = Settings()
    settings = Settings(
        dataset_dir=args.data,
        model_dir=args.model,
        retriever_dir=args.retriever,
        neo4j_uri=server.neo4j_uri if args.neo4j else None,
        neo4j_password=server.neo4j_password,
        redis_url=args.redis_url,
        api_key=None,
    )
    levels = {}
    for concurrency in (int(c) for c in args.concurrency.split(",")):
        print(f"concurrency {concurrency}", flush=True)
        levels[concurrency] = run_level(settings, bodies, concurrency)
    setup = f"{'Neo4j' if args.neo4j else 'embedded graph'}, {'Redis' if args.redis_url else 'in-process'} cache"
    payload = {
        "command": command_line("benchmarks.load_test", args),
        "environment": environment(neo4j_server_version(server) if args.neo4j else "not used"),
        "setup": setup,
        "levels": levels,
    }
    rows = [
        [
            concurrency,
            level["requests"],
            level["throughput_rps"],
            level["latency_ms"]["p50"],
            level["latency_ms"]["p95"],
            level["latency_ms"]["p99"],
            level["errors"],
            level["server_errors"],
            level["degraded"],
            level["cache_hit_ratio"],
            level["mean_batch_size"],
        ]
        for concurrency, level in levels.items()
    ]
    markdown = (
        f"# POST /rank under load ({setup})\n\n`{payload['command']}` on {payload['environment']['machine']}, "
        f"{payload['environment']['date']}.\n{args.requests} requests per level, users drawn at random from "
        f"{args.users} test users (seed {args.seed}), 20 candidates each; a fresh API (cold cache) per level; "
        "latencies seen by the client.\n\n"
        + markdown_table(
            [
                "concurrency",
                "requests",
                "req/s",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "errors",
                "5xx / no answer",
                "degraded",
                "cache hits",
                "mean batch",
            ],
            rows,
        )
        + "\n"
    )
    name = f"load-{'neo4j' if args.neo4j else 'embedded'}-{'redis' if args.redis_url else 'memory'}"
    write_results(f"ml-latest-small/{name}", payload, markdown)


if __name__ == "__main__":
    main()
