"""How every cost grows with the data: MovieLens-shaped datasets at 1×, 10×, 100× ml-latest-small, and the real one.

    .venv/bin/python -m benchmarks.scaling --scales 1,10,100 --real --replace-neo4j-database \
        [--workdir .kgrank/bench-scaling] [--users 50] [--step-minutes 45] [--retriever-negatives N] [--resume]
Needs Neo4j (KGRANK_NEO4J_*, `make neo4j-up`) with its import command (KGRANK_NEO4J_IMPORT_COMMAND; the local
server's is `deploy/neo4j/neo4j.sh import`). --replace-neo4j-database acknowledges that the benchmark empties
that database before each size (the bulk importer replaces it anyway). Writes benchmarks/results/scaling/
scaling.{json,md,png} and a log per step under WORKDIR/logs.

For each size (the generator: benchmarks/movielens_shaped.py), one after another, nothing else running:
- prepare: `kgrank data prepare` (wall seconds and peak memory of the process);
- graph load: `kgrank graph load` into the embedded file and into an empty Neo4j (online, batched MERGE), then
  `kgrank graph load --bulk --replace-database` (Neo4j's offline importer, server restart included); each load
  checks its counts, so the two Neo4j loads are known to hold the same graph;
- relation paths: USERS requests of 20 history items × 20 candidates (popular-weighted, seeded), p50/p99, on
  Neo4j and embedded, at the default 2 hops and at 3 hops (where a path may cross a supernode such as a genre);
- retriever: `kgrank train retriever --max-epochs 1`: the epoch's training and its validation (every user against
  every item) apart, as training.json records them, and with --retriever-negatives N the same with `--negatives N`
  (sampled softmax);
- /rank: a tiny ranker trained for a moment on the size (so ids match) over the full-softmax retriever, or the
  sampled one where the full softmax hit its time cap, served in-process over HTTP: cache miss, hit and the
  no-candidates miss (the retriever scores the whole catalogue), p50 on both graphs (Neo4j reloaded in bulk first
  when it holds another size, as after --resume).
Every step is recorded in WORKDIR/SIZE/result.json; --resume reuses the steps recorded there (a wall too) and runs
only the missing ones.
Growth exponents are least-squares slopes of log(cost) against log(interactions) over the generated sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import movielens_shaped
from benchmarks.common import (
    RESULTS,
    command_line,
    environment,
    markdown_table,
    neo4j_server_version,
    neo4j_settings,
    percentiles,
)
from benchmarks.serving_latency import measure, requests_for
from services.core.cypher import cypher_library
from services.core.settings import Settings
from services.graph_loader.dataset import ProcessedDataset
from services.graph_loader.embedded import EmbeddedGraph
from services.graph_loader.neo4j_connection import open_driver
from services.graph_loader.sample_data import SHARED_DATA
from services.ranker.graphs import holds_complete_load, neo4j_dataset_status
from services.ranker.paths.embedded_source import EmbeddedPathSource
from services.ranker.paths.models import PathConfig, PathRequest
from services.ranker.paths.neo4j_source import Neo4jPathSource

KGRANK = [sys.executable, "-m", "kgrank"]
GROWTH_METRICS = {
    "prepare_s": "prepare (s)",
    "prepare_peak_gb": "prepare peak memory (GB)",
    "load_embedded_s": "load, embedded (s)",
    "load_neo4j_online_s": "load, Neo4j online (s)",
    "load_neo4j_bulk_s": "load, Neo4j bulk, restarts included (s)",
    "load_neo4j_importer_s": "  of which neo4j-admin import (s)",
    "paths_neo4j_p50_ms": "paths 20×20, Neo4j p50 (ms)",
    "paths_embedded_p50_ms": "paths 20×20, embedded p50 (ms)",
    "retriever_train_s": "retriever epoch, training (s)",
    "retriever_sampled_train_s": "retriever epoch, training, sampled softmax (s)",
    "retriever_val_s": "retriever validation, every user × every item (s)",
    "rank_miss_p50_ms": "/rank miss p50, Neo4j (ms)",
    "rank_hit_p50_ms": "/rank hit p50, Neo4j (ms)",
    "rank_retrieve_miss_p50_ms": "/rank without candidates, miss p50, embedded (ms)",
}


class StepFailedError(RuntimeError):
    pass


def timed_command(args: list[str], log: Path, *, minutes: float, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a command under /usr/bin/time: wall seconds and the peak resident memory of the process tree's largest."""
    log.parent.mkdir(parents=True, exist_ok=True)
    stats = log.with_suffix(".time")
    started = time.perf_counter()
    with log.open("w") as handle:
        # A session of its own: on timeout the whole group goes, not only /usr/bin/time (its child would run on).
        process = subprocess.Popen(
            ["/usr/bin/time", "-o", str(stats), "-f", "%M", *args],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        try:
            process.wait(timeout=minutes * 60)
        except subprocess.TimeoutExpired as e:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise StepFailedError(f"{' '.join(args[2:5])} ran past {minutes} min (log: {log})") from e
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise StepFailedError(
            f"{' '.join(args[2:5])} failed with exit {process.returncode}; last lines of {log}:\n"
            + "\n".join(log.read_text().splitlines()[-15:])
        )
    peak_kb = int(stats.read_text().split()[-1])
    return {"seconds": round(seconds, 2), "peak_gb": round(peak_kb / 2**20, 3)}


def importer_seconds(log: Path) -> float | None:
    """The importer's own time, as it reports it ("IMPORT DONE in 1m 3s 25ms")."""
    match = re.search(r"IMPORT DONE in ((?:\d+[hms]+ ?)+)", log.read_text())
    if not match:
        return None
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return round(sum(int(n) * units[u] for n, u in re.findall(r"(\d+)(ms|h|m|s)", match.group(1))), 2)


def empty_neo4j(settings: Settings) -> None:
    """Delete everything in the benchmark's database (it was acknowledged with --replace-neo4j-database)."""
    driver = open_driver(settings)
    try:
        with driver.session(database=settings.neo4j_database) as session:
            for statement in ("database_clear_relationships", "database_clear"):  # small transactions, hubs too
                session.run(cypher_library()[statement]).consume()
    finally:
        driver.close()


def path_requests(dataset: ProcessedDataset, users: int, seed: int) -> list[PathRequest]:
    """USERS users with at least 20 interactions, each with 20 candidates drawn by popularity (seeded)."""
    rng = random.Random(seed)
    frame = dataset.interactions
    counts = frame.groupby("user").size()
    eligible = sorted(counts[counts >= 20].index.tolist())
    popularity = frame.groupby("item").size()
    items, weights = popularity.index.tolist(), popularity.to_numpy(dtype=float)
    requests = []
    for user in rng.sample(eligible, min(users, len(eligible))):
        chosen: dict[int, None] = {}
        while len(chosen) < 20:
            chosen.update(dict.fromkeys(rng.choices(items, weights=weights, k=20 - len(chosen))))
        requests.append(
            PathRequest(user_id=dataset.user_id(user), candidates=tuple(dataset.item(i).id for i in chosen))
        )
    return requests


def time_paths(source: Any, requests: list[PathRequest], *, budget_s: float) -> dict[str, Any]:
    """p50/p99 ms of one request at a time and the median paths found; stops when BUDGET_S is spent."""
    samples, found = [], []
    deadline = time.perf_counter() + budget_s
    for request in requests[:5]:  # warm-up: query plans, caches (a restarted server's page cache is cold)
        source.fetch([request])
        if time.perf_counter() > deadline:
            break
    deadline = time.perf_counter() + budget_s
    for request in requests:
        started = time.perf_counter()
        (result,) = source.fetch([request])
        samples.append((time.perf_counter() - started) * 1000)
        found.append(sum(len(result.paths_to(c.item_id)) for c in result.candidates))
        if time.perf_counter() > deadline:
            break
    spread = percentiles(samples)
    return {
        "p50_ms": spread["p50"],
        "p99_ms": spread["p99"],
        "requests": len(samples),
        "of": len(requests),
        "paths_p50": int(np.median(found)),
    }


UNCAPPED = 10**9  # max_hub_degree that caps nothing: how paths behaved before hubs were capped


def measure_paths(
    dataset: ProcessedDataset, settings: Settings, embedded: Path, requests: list[PathRequest], budget_s: float
) -> dict[str, Any]:
    """2 hops (the default), 3 hops with hubs capped (the default cap), and 3 hops uncapped: the wall the cap
    removes. Uncapped on Neo4j only up to 2M interactions: an exploding query there can take the server's heap."""
    setups = {"2 hops": PathConfig(), "3 hops": PathConfig(max_hops=3)}
    setups["3 hops uncapped"] = PathConfig(max_hops=3, max_hub_degree=UNCAPPED)
    results: dict[str, Any] = {}
    for name, config in setups.items():
        if config.max_hub_degree < UNCAPPED or len(dataset.interactions) <= 2_000_000:
            driver = open_driver(settings)
            try:
                source = Neo4jPathSource(
                    driver, database=settings.neo4j_database, dataset=dataset.name, schema=dataset.schema, config=config
                )
                results[f"neo4j, {name}"] = _or_failure(partial(time_paths, source, requests, budget_s=budget_s))
            finally:
                driver.close()
        graph = EmbeddedGraph(embedded)
        try:
            embedded_source = EmbeddedPathSource(graph, dataset=dataset.name, schema=dataset.schema, config=config)
            results[f"embedded, {name}"] = _or_failure(
                partial(time_paths, embedded_source, requests, budget_s=budget_s)
            )
        finally:
            graph.close()
    return results


def _or_failure(run: Any) -> dict[str, Any]:
    try:
        return run()
    except Exception as e:  # a wall is a result: record what broke and go on
        return {"failed": f"{type(e).__name__}: {str(e)[:300]}"}


def neo4j_holds(settings: Settings, dataset: ProcessedDataset) -> bool:
    """Whether the benchmark's Neo4j database holds a complete load of exactly this dataset."""
    driver = open_driver(settings)
    try:
        status = neo4j_dataset_status(driver, settings, dataset.name)
    finally:
        driver.close()
    return holds_complete_load(status, dataset.manifest.data_hash)


def run_size(
    label: str, raw: Path, args: argparse.Namespace, server: Settings, earlier: dict[str, Any]
) -> dict[str, Any]:
    """Every step of one size, in order. A step recorded in `earlier` (--resume) is reused as it was, wall or not;
    a step that breaks is recorded as {"failed": why}, and the size stops where later steps need its output."""
    work = args.workdir / label
    data, logs = work / "data", args.workdir / "logs" / label
    result: dict[str, Any] = {
        "label": label,
        "raw": str(raw),
        "shape": movielens_shaped.shape_summary(raw / "ratings.csv"),
    }
    neo4j_env = {**os.environ, "KGRANK_NEO4J_IMPORT_COMMAND": args.import_command}
    embedded_env = {k: v for k, v in os.environ.items() if not k.startswith("KGRANK_NEO4J_")}
    minutes = args.step_minutes

    def step(name: str, run: Any) -> bool:
        """Record step `name` (reused or run now); True when it finished."""
        if name in earlier:
            result[name] = earlier[name]
        else:
            print(f"[{label}] {name}", flush=True)
            try:
                result[name] = run()
            except StepFailedError as e:
                result[name] = {"failed": str(e)}
                print(f"[{label}] {name} broke: {e}", flush=True)
        return "failed" not in result[name]

    def kgrank(*arguments: str, log: str, env: dict[str, str], step_minutes: float = minutes) -> Any:
        return partial(timed_command, [*KGRANK, *arguments], logs / log, minutes=step_minutes, env=env)

    def load_embedded() -> dict[str, Any]:
        for stale in data.glob("graph.sqlite*"):
            stale.unlink()
        loaded = kgrank("graph", "load", "--data", str(data), log="load-embedded.log", env=embedded_env)()
        return loaded | {"graph_file_gb": round((data / "graph.sqlite").stat().st_size / 2**30, 3)}

    def load_neo4j_online() -> dict[str, Any]:
        empty_neo4j(server)
        return kgrank("graph", "load", "--data", str(data), log="load-neo4j-online.log", env=neo4j_env)()

    def load_neo4j_bulk(log: str) -> dict[str, Any]:
        arguments = ("graph", "load", "--data", str(data), "--bulk", "--replace-database")
        loaded = kgrank(*arguments, log=log, env=neo4j_env)()
        return loaded | {"importer_s": importer_seconds(logs / log)}

    def train_retriever(run: Path, *extra: str) -> Any:
        arguments = ("train", "retriever", "--data", str(data), "--out", str(run), "--max-epochs", "1", *extra)
        log = f"{run.name}.log"
        budget = args.retriever_minutes or minutes

        def trained() -> dict[str, Any]:
            timed = kgrank(*arguments, log=log, env=embedded_env, step_minutes=budget)()
            first = json.loads((run / "training.json").read_text())["history"][0]
            return timed | {"epoch_s": first["seconds"], "train_s": first["train_s"], "val_s": first["val_s"]}

        return trained

    prepare = ("data", "prepare", "--dataset", "ml-latest-small", "--raw", str(raw), "--out", str(data))
    if not step("prepare", kgrank(*prepare, "--name", f"scale-{label}", log="prepare.log", env=embedded_env)):
        return result
    dataset = ProcessedDataset.load(data)
    result["interactions"] = len(dataset.interactions)
    result["users"], result["items"] = len(dataset.users), len(dataset.items)
    if not step("load_embedded", load_embedded):
        return result
    step("load_neo4j_online", load_neo4j_online)
    step("load_neo4j_bulk", partial(load_neo4j_bulk, "load-neo4j-bulk.log"))
    requests = path_requests(dataset, args.users, seed=0)
    step("paths", partial(measure_paths, dataset, server, data / "graph.sqlite", requests, args.path_budget_s))
    full, sampled = work / "retriever", work / "retriever-sampled"
    retrievers = [full] if step("retriever", train_retriever(full)) else []
    if args.retriever_negatives:
        negatives = ("--negatives", str(args.retriever_negatives))
        if step("retriever_sampled", train_retriever(sampled, *negatives)):
            retrievers.append(sampled)
            result["retriever_sampled"]["negatives"] = args.retriever_negatives
    if not retrievers:
        return result
    serving = retrievers[0]  # the full softmax's where it trained, else the sampled one
    ranker = work / "ranker"
    tiny_ranker = (
        *("train", "ranker", "--data", str(data), "--retriever", str(serving), "--out", str(ranker)),
        *("--base-model", "tiny", "--paths", "shortest", "--train-examples", "64", "--epochs", "1"),
    )
    if not step("ranker_setup", kgrank(*tiny_ranker, log="ranker.log", env=embedded_env)):
        return result
    result["ranker_setup"]["retriever"] = serving.name
    if "rank" not in earlier and not neo4j_holds(server, dataset):  # a resumed size: Neo4j holds another one
        step("reload_neo4j_for_rank", partial(load_neo4j_bulk, "reload-neo4j-for-rank.log"))
    step("rank", partial(measure_rank, dataset, data, ranker, serving, server, args.users))
    return result


def measured_size(label: str, raw: Path, args: argparse.Namespace, server: Settings) -> dict[str, Any]:
    """run_size's result, kept in WORKDIR/LABEL/result.json; with --resume the steps recorded there are reused."""
    saved = args.workdir / label / "result.json"
    earlier = json.loads(saved.read_text()) if args.resume and saved.is_file() else {}
    result = run_size(label, raw, args, server, earlier) | {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds")
    }
    saved.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def measure_rank(
    dataset: ProcessedDataset, data: Path, ranker: Path, run: Path, server: Settings, users: int
) -> dict[str, Any]:
    requests = requests_for(dataset, run, users)
    base = {"dataset_dir": data, "model_dir": ranker, "retriever_dir": run, "redis_url": None, "api_key": None}
    out = {}
    for name, uri in (("embedded", None), ("neo4j", server.neo4j_uri)):
        settings = Settings(**base | {"neo4j_uri": uri}, neo4j_password=server.neo4j_password)
        summary = measure(settings, requests)
        out[name] = {kind: summary[kind]["total_ms"]["p50"] for kind in summary}
    return out


def flat(result: dict[str, Any]) -> dict[str, float | None]:
    """The growth metrics of one size (None where a step did not run or broke)."""

    def get(*keys: str) -> float | None:
        value: Any = result
        for key in keys:
            if not isinstance(value, dict) or key not in value:
                return None
            value = value[key]
        return float(value)

    return {
        "prepare_s": get("prepare", "seconds"),
        "prepare_peak_gb": get("prepare", "peak_gb"),
        "load_embedded_s": get("load_embedded", "seconds"),
        "load_neo4j_online_s": get("load_neo4j_online", "seconds"),
        "load_neo4j_bulk_s": get("load_neo4j_bulk", "seconds"),
        "load_neo4j_importer_s": get("load_neo4j_bulk", "importer_s"),
        "paths_neo4j_p50_ms": get("paths", "neo4j, 2 hops", "p50_ms"),
        "paths_embedded_p50_ms": get("paths", "embedded, 2 hops", "p50_ms"),
        "retriever_train_s": get("retriever", "train_s"),
        "retriever_sampled_train_s": get("retriever_sampled", "train_s"),
        # the same model scores the same users whatever its loss: the full run's, else the sampled run's
        "retriever_val_s": get("retriever", "val_s") or get("retriever_sampled", "val_s"),
        "rank_miss_p50_ms": get("rank", "neo4j", "miss"),
        "rank_hit_p50_ms": get("rank", "neo4j", "hit"),
        "rank_retrieve_miss_p50_ms": get("rank", "embedded", "retrieve miss"),
    }


def growth_exponents(sizes: list[dict[str, Any]]) -> dict[str, float | None]:
    """Slope of log(metric) over log(interactions) across the generated sizes that measured it."""
    exponents: dict[str, float | None] = {}
    for metric in GROWTH_METRICS:
        points = [(s["interactions"], flat(s)[metric]) for s in sizes if "interactions" in s]
        points = [(x, y) for x, y in points if y is not None and y > 0]
        if len(points) < 2:
            exponents[metric] = None
            continue
        xs, ys = np.log([p[0] for p in points]), np.log([p[1] for p in points])
        exponents[metric] = round(float(np.polyfit(xs, ys, 1)[0]), 2)
    return exponents


def plot(sizes: list[dict[str, Any]], exponents: dict[str, float | None], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(13, 5.5))
    groups = (
        (
            "seconds",
            [
                "prepare_s",
                "load_embedded_s",
                "load_neo4j_online_s",
                "load_neo4j_bulk_s",
                "load_neo4j_importer_s",
                "retriever_train_s",
                "retriever_sampled_train_s",
                "retriever_val_s",
            ],
        ),
        (
            "milliseconds",
            [
                "paths_neo4j_p50_ms",
                "paths_embedded_p50_ms",
                "rank_miss_p50_ms",
                "rank_hit_p50_ms",
                "rank_retrieve_miss_p50_ms",
            ],
        ),
    )
    for axis, (unit, metrics) in zip(axes, groups, strict=True):
        for metric in metrics:
            points = [(s["interactions"], flat(s)[metric]) for s in sizes if "interactions" in s]
            points = [(x, y) for x, y in points if y]
            if not points:
                continue
            slope = exponents.get(metric)
            label = f"{GROWTH_METRICS[metric]}" + (f"  ∝ n^{slope}" if slope is not None else "")
            axis.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("interactions (log)")
        axis.set_ylabel(f"{unit} (log)")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle("kgrank: cost against data size (MovieLens-shaped 1×, 10×, 100× ml-latest-small; 2 cores)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def report(payload: dict[str, Any]) -> str:
    sizes = payload["sizes"]
    header = ["metric", *[f"{s['label']} ({s.get('interactions', 0):,})" for s in sizes], "growth exponent"]
    rows = []
    for metric, name in GROWTH_METRICS.items():
        values = [flat(s)[metric] for s in sizes]
        exponent = payload["growth_exponents"][metric]
        rows.append([name, *["—" if v is None else f"{v:,.2f}" for v in values], "—" if exponent is None else exponent])
    hop_rows = []
    for s in sizes:
        for key, value in s.get("paths", {}).items():
            cell = value.get("failed") or (
                f"p50 {value['p50_ms']:,} ms, p99 {value['p99_ms']:,} ms, {value['paths_p50']:,} paths "
                f"({value['requests']}/{value['of']} requests)"
            )
            hop_rows.append([s["label"], key, cell])
    shape_rows = [
        [
            s["label"],
            s.get("measured_at", "?"),
            s["shape"]["users"],
            s["shape"]["movies"],
            s["shape"]["ratings"],
            s["shape"]["per_user_q25_50_75_99_max"],
            s["shape"]["per_movie_q25_50_75_99_max"],
            s["shape"]["largest_genre"],
        ]
        for s in sizes
    ]
    failures = [
        f"- {s['label']}, {name}: {step['failed']}"
        for s in sizes
        for name, step in s.items()
        if isinstance(step, dict) and "failed" in step
    ]
    return (
        "# Scaling: cost against data size\n\n"
        f"`{payload['command']}` on {payload['environment']['machine']}, {payload['environment']['date']}, "
        f"Neo4j {payload['environment']['neo4j_server']} (heap and page cache as `deploy/neo4j/neo4j.sh` sets them).\n"
        "Sizes after `kgrank data prepare` (5-core filtering); growth exponent: slope of log(cost) on "
        "log(interactions) over the generated sizes (1 = linear). Memory: the command's peak resident set.\n\n"
        + markdown_table(header, rows)
        + "\n\nRelation paths per request (20 history items × 20 candidates):\n\n"
        + markdown_table(["size", "setup", "result"], hop_rows)
        + "\n\nShape of the raw data (ratings per user and per movie: quartiles, 99th percentile, max):\n\n"
        + markdown_table(
            ["size", "measured at", "users", "movies", "ratings", "per user", "per movie", "largest genre"], shape_rows
        )
        + ("\n\nSteps that broke:\n" + "\n".join(failures) if failures else "")
        + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", default="1,10,100", help="multiples of ml-latest-small to generate")
    parser.add_argument("--real", action="store_true", help="also the real ml-latest-small (KGRANK_DATA_DIR)")
    parser.add_argument("--workdir", type=Path, default=Path(".kgrank/bench-scaling"))
    parser.add_argument("--users", type=int, default=50, help="requests per path and /rank measurement")
    parser.add_argument("--path-budget-s", type=float, default=60.0, help="time cap per path measurement")
    parser.add_argument("--step-minutes", type=float, default=45.0, help="time cap per step")
    parser.add_argument("--retriever-minutes", type=float, help="time cap of the retriever epoch (default: the step's)")
    parser.add_argument("--import-command", default="deploy/neo4j/neo4j.sh import")
    parser.add_argument("--replace-neo4j-database", action="store_true", help="empty KGRANK_NEO4J_* before each size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--retriever-negatives",
        type=int,
        help="also time a sampled-softmax epoch with N negatives; /rank uses it where the full softmax hit its cap",
    )
    parser.add_argument("--resume", action="store_true", help="reuse the steps an earlier run recorded in WORKDIR")
    args = parser.parse_args()
    if not args.replace_neo4j_database:
        parser.error("the benchmark empties the Neo4j database of KGRANK_NEO4J_*: say so with --replace-neo4j-database")
    server = neo4j_settings()
    neo4j_version = neo4j_server_version(server)
    sizes = []
    for scale in [float(s) for s in args.scales.split(",")]:
        label = f"{scale:g}x"
        raw = args.workdir / label / "raw"
        if not (raw / "ratings.csv").is_file():
            print(f"[{label}] generating", flush=True)
            started = time.perf_counter()
            movielens_shaped.write(scale, raw, seed=args.seed)
            print(f"[{label}] generated in {time.perf_counter() - started:.0f} s", flush=True)
        sizes.append(measured_size(label, raw, args, server) | {"scale": scale})
    payload_sizes = list(sizes)
    if args.real:
        real = Path(os.environ.get("KGRANK_DATA_DIR", SHARED_DATA)) / "ml-latest-small"
        payload_sizes.append(measured_size("ml-latest-small", real, args, server) | {"scale": None})
    payload = {
        "command": command_line("benchmarks.scaling", args),
        "environment": environment(neo4j_version),
        "sizes": payload_sizes,
        "growth_exponents": growth_exponents(sizes),
    }
    out = RESULTS / "scaling"
    out.mkdir(parents=True, exist_ok=True)
    (out / "scaling.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    markdown = report(payload)
    (out / "scaling.md").write_text(markdown, encoding="utf-8")
    plot(sizes, payload["growth_exponents"], out / "scaling.png")
    print(markdown)


if __name__ == "__main__":
    main()
