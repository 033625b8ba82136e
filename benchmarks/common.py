"""Shared benchmark plumbing: settings, the real dataset, percentiles, result files."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from services.core.settings import Settings
from services.graph_loader.dataset import ProcessedDataset
from services.graph_loader.embedded import EmbeddedGraph
from services.graph_loader.loader import load_graph
from services.graph_loader.prepare import prepare_dataset
from services.graph_loader.sample_data import SHARED_DATA

RESULTS = Path(__file__).resolve().parent / "results"
BENCH_DATASET = "bench-ml-latest-small"


def neo4j_settings() -> Settings:
    settings = Settings()
    if not settings.neo4j_uri:
        sys.exit("benchmarks need Neo4j: `make neo4j-up` then `source .neo4j/env` (or set KGRANK_NEO4J_*)")
    return settings


def neo4j_server_version(settings: Settings) -> str:
    from services.graph_loader.neo4j_connection import open_driver

    driver = open_driver(settings)
    try:
        return driver.get_server_info().agent
    finally:
        driver.close()


def real_dataset(workdir: Path) -> ProcessedDataset:
    raw = Path(os.environ.get("KGRANK_DATA_DIR", SHARED_DATA)) / "ml-latest-small"
    if not (raw / "ratings.csv").is_file():
        sys.exit(f"no ml-latest-small at {raw} (set KGRANK_DATA_DIR to the folder holding it)")
    return prepare_dataset("ml-latest-small", raw, workdir / "data", name=BENCH_DATASET)


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)

    return {"p50": round(statistics.median(ordered), 3), "p95": at(0.95), "p99": at(0.99), "n": len(ordered)}


def environment(neo4j_version: str) -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
        "python": platform.python_version(),
        "neo4j_server": neo4j_version,
        "neo4j_driver": version("neo4j"),
        "neo4j_rust_ext": version("neo4j-rust-ext"),
        "kgrank": version("kgrank"),
    }


def command_line(module: str, args: argparse.Namespace) -> str:
    """The command that reproduces a run: options with values first, then the flags that were set."""
    options = [
        f"--{k.replace('_', '-')} {value}"
        for k, v in vars(args).items()
        if v not in (None, False, True)
        for value in (v if isinstance(v, list) else [v])  # a repeatable option, once per value
    ]
    flags = [f"--{k.replace('_', '-')}" for k, v in vars(args).items() if v is True]
    return " ".join([f"python -m {module}", *options, *flags])


def write_results(name: str, payload: dict[str, Any], markdown: str) -> None:
    """RESULTS/NAME.json and RESULTS/NAME.md (NAME may name a subfolder, e.g. ml-latest-small/faults)."""
    json_path, markdown_path = RESULTS / f"{name}.json", RESULTS / f"{name}.md"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    markdown_path.write_text(markdown, encoding="utf-8")
    print(markdown)


def served_model_arguments(parser: argparse.ArgumentParser) -> None:
    """--data, --model and --retriever: what the serving benchmarks run and which requests they send."""
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--retriever", type=Path, required=True)


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def matmul_flops(size: int = 2048, repeats: int = 10) -> float:
    """FLOP/s of a (size × size) @ (size × size) fp32 product on this machine, best of `repeats`: the rate a
    language model's forward pass (matrix products, 2 FLOPs per weight and token) can at best run at."""
    import time

    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.matmul(a, b)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best


def scratch_embedded_graph(dataset: ProcessedDataset, workdir: Path) -> Path:
    """A graph file of the benchmark's own, rebuilt each run, holding every interaction (split "all", as
    serving's does)."""
    path = workdir / "graph.sqlite"
    for stale in workdir.glob("graph.sqlite*"):
        stale.unlink()
    graph = EmbeddedGraph(path)
    try:
        load_graph(dataset, graph, target=f"embedded {path}", split="all", progress=False)
    finally:
        graph.close()
    return path
