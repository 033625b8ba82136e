"""Loading ml-latest-small into Neo4j: kgrank's batched loader vs one round trip per row (the paper's way).

Run (needs the real data and a Neo4j server):
    make neo4j-up && source .neo4j/env && .venv/bin/python -m benchmarks.graph_load
Writes benchmarks/results/graph_load.{json,md}.

The reference is generous to the paper's approach: it uses the same statements, one row per round trip,
but with kgrank's uniqueness constraints in place (the paper's code had none, so each of its lookups
scanned a label). Per-row time is measured on a proportional sample of every part and extrapolated.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

from benchmarks.common import (
    BENCH_DATASET,
    environment,
    markdown_table,
    neo4j_settings,
    real_dataset,
    write_results,
)
from services.graph_loader.loader import batches, load_graph
from services.graph_loader.neo4j_connection import open_driver
from services.graph_loader.neo4j_writer import Neo4jGraphWriter
from services.graph_loader.records import LoadMeta, graph_parts

FRESH_RUNS = 3
SAMPLE_FRACTION = 0.025


def main() -> None:
    # No options, but --help must describe the benchmark before it asks for a server.
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    settings = neo4j_settings()
    database = settings.neo4j_database
    driver = open_driver(settings)
    with tempfile.TemporaryDirectory() as tmp:
        dataset = real_dataset(Path(tmp))
    writer = Neo4jGraphWriter(driver, database=database)

    fresh = []
    for _ in range(FRESH_RUNS):
        writer.drop(BENCH_DATASET)
        fresh.append(load_graph(dataset, writer, target="neo4j").seconds)
    reload = load_graph(dataset, writer, target="neo4j")
    batched = statistics.median(fresh)

    # Reference: one round trip per row, on a proportional sample of each part.
    writer.drop(BENCH_DATASET)
    rng = random.Random(0)
    meta = LoadMeta(
        dataset=BENCH_DATASET,
        data_hash=dataset.manifest.data_hash,
        split="all",
        kgrank_version=version("kgrank"),
    )
    writer.begin_load(meta, dataset.schema)
    per_part = []
    for part in graph_parts(dataset, "all"):
        sample_size = max(20, int(len(part.rows) * SAMPLE_FRACTION))
        chosen = set(rng.sample(range(len(part.rows)), min(sample_size, len(part.rows))))
        started = time.perf_counter()
        for index in sorted(chosen):
            writer.write(BENCH_DATASET, part, [part.rows[index]])
        per_row = (time.perf_counter() - started) / len(chosen)
        rest = [row for index, row in enumerate(part.rows) if index not in chosen]
        for batch in batches(rest, 5000):  # untimed: later parts need these nodes and edges
            writer.write(BENCH_DATASET, part, batch)
        per_part.append(
            {
                "part": part.description,
                "rows": len(part.rows),
                "sampled": len(chosen),
                "ms_per_round_trip": round(per_row * 1000, 3),
                "extrapolated_s": round(per_row * len(part.rows), 2),
            }
        )
    reference = sum(p["extrapolated_s"] for p in per_part)
    writer.drop(BENCH_DATASET)
    server = driver.execute_query("CALL dbms.components() YIELD versions")[0][0]["versions"][0]
    driver.close()

    rows = sum(p["rows"] for p in per_part)
    payload = {
        "benchmark": "graph_load",
        "command": ".venv/bin/python -m benchmarks.graph_load",
        "environment": environment(server),
        "dataset": {"name": "ml-latest-small", "rows": rows, "counts": reload.counts.model_dump()},
        "batched": {
            "fresh_load_s": fresh,
            "median_s": batched,
            "idempotent_reload_s": reload.seconds,
            "batch_size": reload.batch_size,
        },
        "reference_one_round_trip_per_row": {"extrapolated_s": round(reference, 1), "parts": per_part},
        "speedup": round(reference / batched, 1),
        "targets": {"load_s_max": 15, "speedup_min": 50},
    }
    env = payload["environment"]
    table = markdown_table(
        ["approach", "time", "rows", "note"],
        [
            [
                f"kgrank batched UNWIND MERGE (fresh, median of {FRESH_RUNS})",
                f"{batched:.1f} s",
                f"{rows:,}",
                "runs: " + ", ".join(f"{s:.1f}" for s in fresh) + " s",
            ],
            ["kgrank re-load (idempotent, nothing changes)", f"{reload.seconds:.1f} s", f"{rows:,}", ""],
            [
                "one round trip per row (paper's approach, with our constraints)",
                f"{reference:.0f} s (extrapolated)",
                f"{rows:,}",
                f"sampled {SAMPLE_FRACTION:.1%} of each part",
            ],
        ],
    )
    markdown = (
        "# Graph load: ml-latest-small into Neo4j\n\n"
        f"`{payload['command']}` on {env['machine']}, Neo4j {server}, {env['date']}.\n\n{table}\n\n"
        f"**Speed-up: {payload['speedup']}×** (target ≥ 50×); batched load {batched:.1f} s (target ≤ 15 s).\n"
    )
    write_results("graph_load", payload, markdown)


if __name__ == "__main__":
    main()
