"""POST /rank latency over real HTTP: cache misses and hits, per stage, on the embedded graph and on Neo4j.

    .venv/bin/python -m benchmarks.serving_latency --data DATA --model MODEL_DIR --retriever RUN \
        [--neo4j] [--redis-url URL] [--users 100] [--name NAME]
Writes benchmarks/results/ml-latest-small/serving_latency[-NAME].{json,md}.

One client sends requests one after another (latency, not throughput; the load test is separate):
for each of USERS test users, the retriever's top 20 once (a miss: graph, paths, prompt, one forward
pass) and then again (a hit); then the same user without candidates, twice (the served retriever picks
its top 20 from the user's live history first: "retrieve miss" and "retrieve hit"). Graphs: the embedded
file at DATA/graph.sqlite and, with --neo4j, the same data loaded into the Neo4j of KGRANK_NEO4J_* (loaded
here, split "all" as in serving).
Caches: in-process, and Redis with --redis-url. The scoring stage is set beside its compute bound:
2 × the model's parameters × the prompt's tokens ÷ this machine's matmul FLOP/s, measured in the same run.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import statistics
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import (
    command_line,
    environment,
    markdown_table,
    matmul_flops,
    percentiles,
    scratch_embedded_graph,
    served_model_arguments,
    write_results,
)
from services.api.app import build_service, create_app
from services.api.local import serve_in_thread
from services.core.settings import Settings
from services.graph_loader.dataset import ProcessedDataset
from services.graph_loader.loader import load_graph
from services.graph_loader.neo4j_connection import open_driver
from services.graph_loader.neo4j_writer import Neo4jGraphWriter
from services.ranker.candidates import CandidateSet

STAGES = ("graph_state", "cache", "retrieve", "graph", "retriever", "paths", "prompt", "score")
KINDS = ("miss", "hit", "retrieve miss", "retrieve hit")


def requests_for(dataset: ProcessedDataset, retriever: Path, users: int) -> list[dict[str, Any]]:
    candidates = CandidateSet.load(retriever / "candidates-test.npz")
    return [
        {"user_id": dataset.user_id(int(user)), "candidates": [dataset.item(i).id for i in candidates.valid(row, 20)]}
        for row, user in enumerate(candidates.users[:users].tolist())
    ]


def measure(settings: Settings, requests: list[dict[str, Any]]) -> dict[str, Any]:
    if settings.redis_url:
        import redis

        redis.Redis.from_url(settings.redis_url).flushdb()  # every setup starts cold (a scratch database)
    app = create_app(settings, service=build_service(settings))
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        client.post("/rank", json=requests[0] | {"user_id": "warm-up"}).raise_for_status()
        gc.collect()
        gc.freeze()  # the service's long-lived objects leave the collector's generations: no GC pauses in the tail
        samples: dict[str, list[tuple[float, dict[str, float]]]] = {kind: [] for kind in KINDS}
        for request in requests:
            for kind in KINDS:
                sent = request if kind in ("miss", "hit") else {"user_id": request["user_id"]}
                started = time.perf_counter()
                response = client.post("/rank", json=sent)
                elapsed_ms = (time.perf_counter() - started) * 1000
                response.raise_for_status()
                body = response.json()
                if body["cached"] != kind.endswith("hit") or body["degraded"]:
                    raise SystemExit(f"unexpected answer for a {kind}: cached={body['cached']} {body['degraded']}")
                samples[kind].append((elapsed_ms, body["timings_ms"] | {"prompt_tokens": body["prompt_tokens"]}))
        gc.unfreeze()
    return {kind: _summary(kind_samples) for kind, kind_samples in samples.items()}


def _summary(samples: list[tuple[float, dict[str, float]]]) -> dict[str, Any]:
    timings = [t for _, t in samples]
    return {
        "prompt_tokens_p50": statistics.median(t["prompt_tokens"] for t in timings),
        "client_ms": percentiles([elapsed for elapsed, _ in samples]),
        "total_ms": percentiles([t["total"] for t in timings]),
        "stage_p50_ms": {
            stage: round(statistics.median(t[stage] for t in timings), 3) for stage in STAGES if stage in timings[0]
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    served_model_arguments(parser)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--workdir", type=Path, default=Path(".kgrank/bench-serving"))
    parser.add_argument("--neo4j", action="store_true", help="also measure on Neo4j (KGRANK_NEO4J_*)")
    parser.add_argument("--redis-url", help="also measure with the Redis cache (a scratch database: it is flushed)")
    parser.add_argument("--name", default="", help="suffix of the result files, e.g. smollm2")
    args = parser.parse_args()

    dataset = ProcessedDataset.load(args.data)
    requests = requests_for(dataset, args.retriever, args.users)
    graph_path = scratch_embedded_graph(dataset, args.workdir)
    base = {
        "dataset_dir": args.data,
        "model_dir": args.model,
        "retriever_dir": args.retriever,
        "graph_path": graph_path,
        "redis_url": None,
        "api_key": None,
    }
    neo4j_version, server = "not measured", Settings()
    if args.neo4j:
        driver = open_driver(server)
        try:
            load_graph(dataset, Neo4jGraphWriter(driver, database=server.neo4j_database), target="neo4j", split="all")
            neo4j_version = driver.get_server_info().agent
        finally:
            driver.close()
    setups: dict[str, Settings] = {}
    for graph_name, uri in (("embedded graph", None), ("Neo4j", server.neo4j_uri if args.neo4j else "")):
        for cache_name, redis_url in (("in-process cache", None), ("Redis cache", args.redis_url or "")):
            if uri != "" and redis_url != "":
                setups[f"{graph_name}, {cache_name}"] = Settings(
                    **base | {"neo4j_uri": uri, "redis_url": redis_url}, neo4j_password=server.neo4j_password
                )

    results = {}
    for name, settings in setups.items():
        print(f"measuring: {name}", flush=True)
        results[name] = measure(settings, requests)
    flops = matmul_flops()
    parameters = parameter_count(args.model)
    for result in results.values():
        tokens = result["miss"]["prompt_tokens_p50"]
        bound_ms = 2 * parameters * tokens / flops * 1000
        result["miss"]["score_compute_bound_ms"] = round(bound_ms, 2)
        result["miss"]["score_over_bound"] = round(result["miss"]["stage_p50_ms"]["score"] / bound_ms, 2)
    payload = {
        "command": command_line("benchmarks.serving_latency", args),
        "environment": environment(neo4j_version),
        "requests_per_setup": dict.fromkeys(KINDS, len(requests)),
        "candidates_per_request": 20,
        "model": json.loads((args.model / "kgrank_ranker.json").read_text())["base_model"],
        "parameters": parameters,
        "matmul_gflops": round(flops / 1e9, 1),
        "targets_ms": {"hit_p50": 3, "miss_p50": 100},
        "results": results,
    }
    rows = []
    for name, result in results.items():
        for kind in KINDS:
            total, client = result[kind]["total_ms"], result[kind]["client_ms"]
            stages = ", ".join(f"{s} {v:.1f}" for s, v in result[kind]["stage_p50_ms"].items())
            rows.append([name, kind, total["p50"], total["p95"], total["p99"], client["p50"], stages])
    markdown = (
        "# /rank latency (ml-latest-small, one client over loopback HTTP)\n\n"
        f"`{payload['command']}` on {payload['environment']['machine']}, {payload['environment']['date']}.\n"
        f"{len(requests)} test users, each asked once (miss) and again (hit) with 20 candidates (the retriever's "
        f"top 20), then without candidates (the served retriever picks 20 from the live history, seen items "
        f"left out: retrieve miss, retrieve hit); in-process scorer, {payload['model']} model. Targets: hit p50 "
        "<= 3 ms, miss p50 <= 100 ms.\n"
        "p50/p95/p99 are the server's own `timings_ms.total` (handler in to response built); client p50 adds "
        "HTTP, JSON and the client itself.\n\n"
        + markdown_table(["setup", "request", "p50 ms", "p95 ms", "p99 ms", "client p50 ms", "stage p50 ms"], rows)
        + "\n\nScoring against the compute bound (misses; 2 × "
        + f"{parameters:,} parameters × the median prompt's tokens ÷ {flops / 1e9:.0f} GFLOP/s, this run):\n\n"
        + markdown_table(
            ["setup", "prompt tokens p50", "score p50 ms", "bound ms", "score / bound"],
            [
                [
                    name,
                    r["miss"]["prompt_tokens_p50"],
                    r["miss"]["stage_p50_ms"]["score"],
                    r["miss"]["score_compute_bound_ms"],
                    r["miss"]["score_over_bound"],
                ]
                for name, r in results.items()
            ],
        )
        + "\n"
    )
    write_results("ml-latest-small/serving_latency" + (f"-{args.name}" if args.name else ""), payload, markdown)


def parameter_count(model_dir: Path) -> int:
    """Parameters of the served checkpoint, counted from its safetensors headers (no weights loaded)."""
    from safetensors import safe_open

    total = 0
    for file in sorted(model_dir.glob("*.safetensors")):
        with safe_open(file, framework="pt") as weights:
            for name in weights.keys():  # noqa: SIM118 - safe_open has keys(), not iteration
                total += math.prod(weights.get_slice(name).get_shape())
    return total


if __name__ == "__main__":
    main()
