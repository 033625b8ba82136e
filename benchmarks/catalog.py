"""The living catalogue: PUT /items latency, and new items ranked as candidates, on the embedded graph and Neo4j.

    .venv/bin/python -m benchmarks.catalog --data DATA --model MODEL_DIR --retriever RUN [--items 100] [--neo4j]
Writes benchmarks/results/ml-latest-small/catalog.{json,md}.

For each of ITEMS test users: a new item is created through PUT /items/{id}, its attributes copied from the
user's test item (a stand-in for a real new release of the same kind: genres, year, directors, actors),
then /rank is asked with the new item among the retriever's top 19. Per graph: PUT latency, /rank latency,
how often the new item came with graph paths (explanations), and its rank. Graphs: a copy of DATA's data
loaded into a scratch embedded file, and with --neo4j the Neo4j of KGRANK_NEO4J_* (a scratch dataset name is
not possible: the data is loaded under its own name, and the new items stay in its living catalogue there).
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import (
    command_line,
    environment,
    markdown_table,
    neo4j_server_version,
    percentiles,
    scratch_embedded_graph,
    served_model_arguments,
    write_results,
)
from benchmarks.serving_latency import requests_for
from services.api.app import build_service, create_app
from services.api.local import serve_in_thread
from services.core.settings import Settings
from services.graph_loader.dataset import ProcessedDataset
from services.graph_loader.loader import load_graph
from services.graph_loader.neo4j_connection import open_driver
from services.graph_loader.neo4j_writer import Neo4jGraphWriter


def measure(settings: Settings, dataset: ProcessedDataset, requests: list[dict[str, Any]]) -> dict[str, Any]:
    key = settings.api_key.get_secret_value()  # type: ignore[union-attr]
    run = uuid.uuid4().hex[:6]
    puts, ranks, with_paths, positions = [], [], 0, []
    app = create_app(settings, service=build_service(settings))
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=60, headers={"X-API-Key": key}) as client:
        for n, request in enumerate(requests):
            source = dataset.item(_test_item(dataset, request["user_id"]))
            item_id = f"bench-{run}-{n}"
            body = {"title": f"New: {source.title}", "attributes": source.attributes}
            started = time.perf_counter()
            client.put(f"/items/{item_id}", json=body).raise_for_status()
            puts.append((time.perf_counter() - started) * 1000)
            candidates = [item_id, *[c for c in request["candidates"] if c != source.id][:19]]
            started = time.perf_counter()
            answer = client.post("/rank", json={"user_id": request["user_id"], "candidates": candidates})
            ranks.append((time.perf_counter() - started) * 1000)
            answer.raise_for_status()
            (new,) = [item for item in answer.json()["ranking"] if item["item_id"] == item_id]
            with_paths += bool(new["explanations"])
            positions.append(new["rank"])
    return {
        "put_ms": percentiles(puts),
        "rank_ms": percentiles(ranks),
        "new_item_with_paths": round(with_paths / len(requests), 3),
        "new_item_rank_median": statistics.median(positions),
    }


def _test_item(dataset: ProcessedDataset, user_id: str) -> int:
    frame = dataset.interactions
    user = dataset.users.index(user_id) + 1
    return int(frame.loc[(frame["user"] == user) & (frame["split"] == "test"), "item"].iloc[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    served_model_arguments(parser)
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--neo4j", action="store_true")
    parser.add_argument("--workdir", type=Path, default=Path(".kgrank/bench-catalog"))
    args = parser.parse_args()

    dataset = ProcessedDataset.load(args.data)
    requests = requests_for(dataset, args.retriever, args.items)
    graph_path = scratch_embedded_graph(dataset, args.workdir)
    key = secrets.token_urlsafe(24)
    base = {"dataset_dir": args.data, "model_dir": args.model, "retriever_dir": args.retriever, "api_key": key}
    setups = {"embedded graph": Settings(**base, neo4j_uri=None, graph_path=graph_path, redis_url=None)}
    neo4j_version, server = "not measured", Settings()
    if args.neo4j:
        driver = open_driver(server)
        try:
            load_graph(
                dataset, Neo4jGraphWriter(driver, database=server.neo4j_database), target="neo4j", progress=False
            )
        finally:
            driver.close()
        neo4j_version = neo4j_server_version(server)
        setups["Neo4j"] = Settings(
            **base, neo4j_uri=server.neo4j_uri, neo4j_password=server.neo4j_password, redis_url=None
        )
    results = {}
    for name, settings in setups.items():
        print(f"measuring: {name}", flush=True)
        results[name] = measure(settings, dataset, requests)
    payload = {
        "command": command_line("benchmarks.catalog", args),
        "environment": environment(neo4j_version),
        "items": len(requests),
        "results": results,
    }
    rows = [
        [
            name,
            r["put_ms"]["p50"],
            r["put_ms"]["p99"],
            r["rank_ms"]["p50"],
            r["rank_ms"]["p99"],
            f"{r['new_item_with_paths']:.0%}",
            r["new_item_rank_median"],
        ]
        for name, r in results.items()
    ]
    markdown = (
        f"# The living catalogue: new items through the API\n\n`{payload['command']}` on "
        f"{payload['environment']['machine']}, {payload['environment']['date']}.\n{len(requests)} new items, each "
        "created with PUT /items (attributes copied from a test user's held-out item), then ranked for that user "
        "among the retriever's top 19 (a cache miss). The trained retriever has no embedding for a new item: "
        "what it gets comes from its graph paths. Latencies seen by the client, in ms.\n\n"
        + markdown_table(
            ["graph", "PUT p50", "PUT p99", "/rank p50", "/rank p99", "new item with paths", "its median rank"], rows
        )
        + "\n"
    )
    write_results("ml-latest-small/catalog", payload, markdown)


if __name__ == "__main__":
    main()
