"""Relation paths for 20 history items × 20 candidates: one round trip vs the paper's 420 queries.

Run (needs the real data and a Neo4j server):
    make neo4j-up && source .neo4j/env && .venv/bin/python -m benchmarks.graph_paths
Writes benchmarks/results/graph_paths.{json,md}.

Requests mimic evaluation: a test user's held-out item among 19 random others, history cut off before
it. kgrank returns every path of up to 2 hops (at most 10 per pair); the reference returns one
shortest path per pair plus each history item's rating, one round trip each (20 + 400 = 420).
"""

from __future__ import annotations

import argparse
import gc
import random
import tempfile
import time
from pathlib import Path

from benchmarks.common import (
    BENCH_DATASET,
    environment,
    markdown_table,
    neo4j_settings,
    percentiles,
    real_dataset,
    write_results,
)
from services.core.cypher import cypher_library
from services.graph_loader.embedded import EmbeddedGraph
from services.graph_loader.loader import load_graph
from services.graph_loader.neo4j_connection import open_driver
from services.graph_loader.neo4j_writer import Neo4jGraphWriter
from services.ranker.paths import HistoryCutoff, PathConfig, PathRequest
from services.ranker.paths.embedded_source import EmbeddedPathSource
from services.ranker.paths.neo4j_source import Neo4jPathSource

REQUESTS = 300
WARM_UP = 30
REFERENCE_USERS = 15


def main() -> None:
    # No options, but --help must describe the benchmark before it asks for a server.
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    settings = neo4j_settings()
    database = settings.neo4j_database
    driver = open_driver(settings)
    with tempfile.TemporaryDirectory() as tmp:
        dataset = real_dataset(Path(tmp))
        load_graph(dataset, Neo4jGraphWriter(driver, database=database), target="neo4j")
        graph = EmbeddedGraph(Path(tmp) / "graph.sqlite")
        load_graph(dataset, graph, target="embedded")

        rng = random.Random(0)
        items = [item.id for item in dataset.items]
        tests = dataset.interactions[dataset.interactions["split"] == "test"]
        requests = []
        for row in tests.sample(REQUESTS + WARM_UP, random_state=0, replace=True).itertuples():
            target = dataset.item(row.item).id
            candidates = [target, *rng.sample([i for i in items if i != target], 19)]
            rng.shuffle(candidates)
            requests.append(
                PathRequest(
                    user_id=dataset.user_id(row.user),
                    candidates=tuple(candidates),
                    cutoff=HistoryCutoff(timestamp=row.timestamp, item_idx=row.item),
                )
            )

        # A server freezes what it loaded at start-up, so the cyclic GC stops re-scanning it; without
        # this, a full collection over the loaded dataset adds ~40 ms to one request in fifty.
        gc.freeze()
        config = PathConfig()
        ours = Neo4jPathSource(driver, database=database, dataset=BENCH_DATASET, schema=dataset.schema, config=config)
        embedded = EmbeddedPathSource(graph, dataset=BENCH_DATASET, schema=dataset.schema, config=config)
        timings: dict[str, list[float]] = {"neo4j": [], "embedded": []}
        paths_per_request = []
        for index, request in enumerate(requests):
            for name, source in (("neo4j", ours), ("embedded", embedded)):
                started = time.perf_counter()
                (result,) = source.fetch([request])
                elapsed = (time.perf_counter() - started) * 1000
                if index >= WARM_UP:
                    timings[name].append(elapsed)
            if index >= WARM_UP:
                paths_per_request.append(len(result.paths))
        graph.close()

        batch_started = time.perf_counter()
        ours.fetch(requests[WARM_UP:])
        batch_ms_per_user = (time.perf_counter() - batch_started) * 1000 / REQUESTS

        library = cypher_library()
        path_types = list(dataset.schema.path_types)
        reference = []
        for request in requests[WARM_UP : WARM_UP + REFERENCE_USERS]:
            (known,) = ours.fetch([request])
            history = [h.item_id for h in known.history]
            started = time.perf_counter()
            round_trips = 0
            for item_id in history:
                driver.execute_query(
                    library["reference_rating"],
                    dataset=BENCH_DATASET,
                    user_id=request.user_id,
                    item_id=item_id,
                    database_=database,
                )
                round_trips += 1
                for candidate in request.candidates:
                    driver.execute_query(
                        library["reference_shortest_path"],
                        dataset=BENCH_DATASET,
                        history_id=item_id,
                        candidate_id=candidate,
                        path_types=path_types,
                        database_=database,
                    )
                    round_trips += 1
            reference.append({"ms": (time.perf_counter() - started) * 1000, "round_trips": round_trips})
        server = driver.execute_query("CALL dbms.components() YIELD versions")[0][0]["versions"][0]
    driver.close()

    neo4j_stats, embedded_stats = percentiles(timings["neo4j"]), percentiles(timings["embedded"])
    reference_stats = percentiles([r["ms"] for r in reference])
    speedup = round(reference_stats["p50"] / neo4j_stats["p50"], 1)
    payload = {
        "benchmark": "graph_paths",
        "command": ".venv/bin/python -m benchmarks.graph_paths",
        "environment": environment(server),
        "workload": {
            "history_items": config.history_length,
            "candidates": 20,
            "max_hops": config.max_hops,
            "max_paths_per_pair": config.max_paths_per_pair,
            "requests": REQUESTS,
            "median_paths_per_request": sorted(paths_per_request)[len(paths_per_request) // 2],
        },
        "kgrank_neo4j_one_round_trip_ms": neo4j_stats,
        "kgrank_neo4j_batched_ms_per_user": round(batch_ms_per_user, 3),
        "kgrank_embedded_ms": embedded_stats,
        "reference_420_queries_ms": reference_stats,
        "reference_round_trips_median": sorted(r["round_trips"] for r in reference)[len(reference) // 2],
        "speedup_p50": speedup,
        "targets": {"p50_ms_max": 15, "speedup_min": 50},
    }
    env, work = payload["environment"], payload["workload"]

    def row(name: str, trips: object, stats: dict[str, float]) -> list[object]:
        return [name, trips, stats["p50"], stats["p95"], stats["p99"], stats["n"]]

    table = markdown_table(
        ["approach", "round trips", "p50 ms", "p95 ms", "p99 ms", "requests"],
        [
            row("kgrank, Neo4j, `cypher/paths.cypher`", 1, neo4j_stats),
            [
                f"kgrank, Neo4j, {REQUESTS} users in one batched call",
                1,
                f"{batch_ms_per_user:.2f} per user",
                "",
                "",
                REQUESTS,
            ],
            row("kgrank, embedded graph (in-process SQLite)", 0, embedded_stats),
            row(
                "paper's approach: rating + shortestPath per pair",
                payload["reference_round_trips_median"],
                reference_stats,
            ),
        ],
    )
    markdown = (
        "# Relation paths: 20 history items × 20 candidates (ml-latest-small, Neo4j)\n\n"
        f"`{payload['command']}` on {env['machine']}, Neo4j {server}, {env['date']}. "
        f"Median {work['median_paths_per_request']} paths returned per request by kgrank.\n\n{table}\n\n"
        f"**Speed-up at p50: {speedup}×** (target ≥ 50×); "
        f"kgrank p50 {neo4j_stats['p50']} ms (target ≤ 15 ms).\n"
    )
    write_results("graph_paths", payload, markdown)


if __name__ == "__main__":
    main()
