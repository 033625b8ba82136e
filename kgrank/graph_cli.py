"""`kgrank graph …`: load a processed dataset into a graph and look at relation paths."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Literal, TypeVar

import typer

from kgrank.options import (
    DataDir,
    EmbeddedPath,
    Neo4jUri,
    embedded_path_for,
    output_file,
    path_source,
    settings_for,
)
from services.core.atomic import write_json
from services.core.errors import GraphNotLoadedError, RequestError
from services.graph_loader.bulk_import import bulk_load
from services.graph_loader.catalog import write_catalog_jsonl
from services.graph_loader.dataset import ProcessedDataset
from services.graph_loader.embedded import EmbeddedGraph
from services.graph_loader.events import write_events_csv
from services.graph_loader.loader import GraphWriter, LoadReport, load_graph
from services.graph_loader.neo4j_connection import open_driver
from services.graph_loader.neo4j_writer import Neo4jGraphWriter
from services.ranker.paths import HistoryCutoff, PathConfig, PathRequest, UserPaths
from services.ranker.paths.render import candidate_letter, path_cypher, path_text, rating_text

T = TypeVar("T")

graph_app = typer.Typer(help="Build the knowledge graph and query relation paths.", no_args_is_help=True)


@graph_app.command("load")
def load(
    data: DataDir,
    neo4j_uri: Neo4jUri = None,
    embedded: EmbeddedPath = None,
    split: Annotated[
        Literal["train", "all"],
        typer.Option(help="train: leave val/test interactions out (for evaluation without leakage)."),
    ] = "all",
    batch_size: Annotated[int, typer.Option(min=1, max=100_000, help="Rows per transaction.")] = 5000,
    report: Annotated[Path | None, typer.Option(help="Where to write the JSON load report.")] = None,
    bulk: Annotated[
        bool,
        typer.Option(
            "--bulk",
            help="First load of a big dataset into a NEW Neo4j database with Neo4j's offline importer "
            "(KGRANK_NEO4J_IMPORT_COMMAND, default `neo4j-admin database import full`; the server must be stopped "
            "while it runs): writes its CSV files, runs it, waits for the server, adds constraints, checks counts.",
        ),
    ] = False,
    replace_database: Annotated[
        bool,
        typer.Option(
            "--replace-database",
            help="With --bulk: replace a database that is not empty (never one with live records).",
        ),
    ] = False,
    import_dir: Annotated[
        Path | None,
        typer.Option(help="With --bulk: where to write the importer's CSV files (default DATA/bulk-import)."),
    ] = None,
) -> None:
    """Write DATA's graph (constraints, then batched MERGE) and replay the live event log onto it; re-running
    changes nothing, and no load (another split included) loses an interaction posted to the API.
    With --bulk, a first load through Neo4j's offline importer instead (much faster for millions of rows)."""
    dataset = ProcessedDataset.load(data)
    settings = settings_for(neo4j_uri)
    if (replace_database or import_dir) and not bulk:
        raise RequestError("--replace-database and --import-dir go with --bulk")
    if bulk and not settings.neo4j_uri:
        raise RequestError(
            "--bulk loads Neo4j: give --neo4j-uri (or KGRANK_NEO4J_URI); the embedded graph has no importer"
        )
    report_path = output_file(report or data / f"graph-load-{'neo4j' if settings.neo4j_uri else 'embedded'}.json")
    if settings.neo4j_uri and bulk:
        result = bulk_load(
            dataset,
            lambda: open_driver(settings),
            database=settings.neo4j_database,
            target=f"neo4j {settings.neo4j_uri}",
            import_command=settings.neo4j_import_command,
            folder=import_dir or data / "bulk-import",
            split=split,
            replace_database=replace_database,
            log=typer.echo,
        )
    elif settings.neo4j_uri:
        driver = open_driver(settings)
        try:
            writer = Neo4jGraphWriter(driver, database=settings.neo4j_database)
            result = load_graph(
                dataset, writer, target=f"neo4j {settings.neo4j_uri}", split=split, batch_size=batch_size
            )
        finally:
            driver.close()
    else:
        result = load_embedded(dataset, embedded_path_for(data, embedded), split=split, batch_size=batch_size)
    write_json(report_path, result.model_dump(mode="json"))
    counts = result.counts
    typer.echo(
        f"loaded {result.dataset} ({result.split}) into {result.target} in {result.seconds:.1f} s: "
        f"{sum(counts.nodes.values()):,} nodes, {sum(counts.relationships.values()):,} relationships"
        f"{' (replaced a different earlier load)' if result.wiped_previous else ''}; "
        f"{result.live_items:,} live items and {result.live_events:,} live events replayed"
        + (
            f", {result.live_events_skipped:,} kept in the log but not in the graph (their items are not in "
            f"this dataset)"
            if result.live_events_skipped
            else ""
        )
    )
    typer.echo(f"report: {report_path}")


def load_embedded(
    dataset: ProcessedDataset, path: Path, *, split: Literal["train", "all"], batch_size: int = 5000
) -> LoadReport:
    graph = EmbeddedGraph(path)
    try:
        return load_graph(dataset, graph, target=f"embedded {path}", split=split, batch_size=batch_size)
    finally:
        graph.close()


@graph_app.command("events")
def events(
    data: DataDir,
    out: Annotated[Path, typer.Option("--out", help="CSV file to write the events to.")],
    neo4j_uri: Neo4jUri = None,
    embedded: EmbeddedPath = None,
) -> None:
    """Export the live event log (every POST /interactions) as CSV, for `kgrank data prepare --events`."""
    dataset = ProcessedDataset.load(data)
    output_file(out)
    log = _read_live(data, dataset, neo4j_uri, embedded, lambda writer: writer.events(dataset.name))
    count = write_events_csv(log, out)
    users = len({event.user_id for event in log})
    typer.echo(f"wrote {count:,} live events of {users:,} users of {dataset.name} to {out}")


@graph_app.command("catalog")
def catalog(
    data: DataDir,
    out: Annotated[Path, typer.Option("--out", help="JSON-lines file to write the items to.")],
    neo4j_uri: Neo4jUri = None,
    embedded: EmbeddedPath = None,
) -> None:
    """Export the living catalogue (every PUT /items) as JSON lines, for `kgrank data prepare --catalog`."""
    dataset = ProcessedDataset.load(data)
    output_file(out)
    items = _read_live(data, dataset, neo4j_uri, embedded, lambda writer: writer.catalog(dataset.name))
    count = write_catalog_jsonl(items, out)
    typer.echo(f"wrote {count:,} catalogue items of {dataset.name} to {out}")


def _read_live(
    data: Path,
    dataset: ProcessedDataset,
    neo4j_uri: str | None,
    embedded: Path | None,
    read: Callable[[GraphWriter], T],
) -> T:
    """What `read` takes from the graph's live records (Neo4j, or DATA's embedded file)."""
    settings = settings_for(neo4j_uri)
    if settings.neo4j_uri:
        driver = open_driver(settings)
        try:
            return read(Neo4jGraphWriter(driver, database=settings.neo4j_database))
        finally:
            driver.close()
    path = embedded_path_for(data, embedded)
    if not path.is_file():
        raise GraphNotLoadedError(f"no embedded graph at {path}; run `kgrank graph load` first")
    graph = EmbeddedGraph(path)
    try:
        return read(graph)
    finally:
        graph.close()


@graph_app.command("paths")
def paths(
    data: DataDir,
    user: Annotated[str, typer.Option(help="User id as in the raw data.")],
    candidates: Annotated[str, typer.Option(help="Comma-separated candidate item ids.")],
    neo4j_uri: Neo4jUri = None,
    embedded: EmbeddedPath = None,
    history_length: Annotated[int, typer.Option(min=1, max=200)] = 20,
    max_hops: Annotated[int, typer.Option(min=1, max=3)] = 2,
    max_paths: Annotated[int, typer.Option(min=1, max=100, help="Paths kept per (history, candidate) pair.")] = 3,
    cutoff_ts: Annotated[int | None, typer.Option(help="Only history strictly before this timestamp.")] = None,
    cypher: Annotated[bool, typer.Option(help="Also print a Neo4j Browser query per path.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Print a user's recent history and the relation paths from it to each candidate."""
    dataset = ProcessedDataset.load(data)
    candidate_ids = tuple(c.strip() for c in candidates.split(",") if c.strip())
    if not candidate_ids:
        raise RequestError("--candidates needs at least one item id")
    request = PathRequest(
        user_id=user,
        candidates=candidate_ids,
        cutoff=HistoryCutoff(timestamp=cutoff_ts) if cutoff_ts is not None else None,
    )
    config = PathConfig(history_length=history_length, max_hops=max_hops, max_paths_per_pair=max_paths)
    with path_source(data, dataset, neo4j_uri=neo4j_uri, embedded=embedded, config=config) as source:
        (result,) = source.fetch([request])
    if as_json:
        typer.echo(json.dumps(result.model_dump(mode="json"), indent=2, ensure_ascii=False))
        return
    typer.echo(describe_paths(result, dataset=dataset, with_cypher=cypher))


def describe_paths(
    result: UserPaths, *, dataset: ProcessedDataset, with_cypher: bool, shown_per_candidate: int | None = None
) -> str:
    lines = [
        f"user {result.user_id}: "
        + (f"{len(result.history)} recent history items" if result.known_user else "unknown user (cold start)")
    ]
    lines += [f"  ({n}) {item.title}" for n, item in enumerate(result.history, start=1)]
    for position, candidate in enumerate(result.candidates):
        found = result.paths_to(candidate.item_id)
        lines.append(f"({candidate_letter(position)}) {candidate.title}: {len(found)} path(s)")
        for path in found[:shown_per_candidate]:
            rating = rating_text(result, path.history_item)
            lines.append(f"    {rating + ' ' if rating else ''}{path_text(result, path)}")
            if with_cypher:
                lines.append(f"      {path_cypher(path, dataset=dataset.name, schema=dataset.schema)}")
        if shown_per_candidate is not None and len(found) > shown_per_candidate:
            lines.append(f"    … and {len(found) - shown_per_candidate} more")
    return "\n".join(lines)
