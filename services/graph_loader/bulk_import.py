"""The first load of a big dataset through Neo4j's offline importer (`neo4j-admin database import full`).

The online loader MERGEs batches over Bolt: safe on a live database, but every row is a transaction's worth of
index lookups. For a NEW database Neo4j ships an offline importer that writes the store files directly. This
module writes the CSV files it takes from the very rows the online loader writes (records.graph_parts), runs a
configurable import command, waits for the server to come back, creates the same constraints, and checks the
counts exactly as the online loader does before marking the load complete.

The importer replaces the whole database, so a bulk load refuses a database that holds anything unless told to
replace it, and always refuses one that holds live records (events posted to the API, living-catalogue items):
those exist nowhere else. Export them first (`kgrank graph events` / `catalog`) and prepare them into the data.
"""

from __future__ import annotations

import csv
import shlex
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import neo4j
from neo4j.exceptions import Neo4jError, ServiceUnavailable

from services.core.cypher import cypher_library
from services.core.errors import GraphError, GraphUnavailableError, RequestError
from services.graph_loader.dataset import ProcessedDataset
from services.graph_loader.loader import LoadReport, load_meta, verified_counts
from services.graph_loader.neo4j_writer import Neo4jGraphWriter
from services.graph_loader.records import GraphPart, GraphSplit, expected_counts, graph_parts
from services.graph_loader.schema import ITEM_LABEL, RATED, USER_LABEL


def write_import_files(dataset: ProcessedDataset, parts: list[GraphPart], folder: Path) -> list[str]:
    """One CSV per node label and relationship type in `folder`; returns the importer's file arguments."""
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.csv"):
        stale.unlink()
    arguments: list[str] = []
    attribute_names: dict[str, set[str]] = {}
    for part in parts:
        if part.kind == "users":
            path = _write(folder / "users.csv", ["id:ID(User)", "idx:long", "dataset"], _users(part, dataset.name))
            arguments.append(f"--nodes={USER_LABEL}={path}")
        elif part.kind == "items":
            keys = sorted({key for row in part.rows for key in row["properties"]})
            header = ["id:ID(Item)", "idx:long", "title", "dataset", *keys]
            rows = (
                [row["id"], row["idx"], row["title"], dataset.name, *(row["properties"].get(k) for k in keys)]
                for row in part.rows
            )
            arguments.append(f"--nodes={ITEM_LABEL}={_write(folder / 'items.csv', header, rows)}")
        elif part.kind == "attributes" and part.label and part.rel_type:
            names = attribute_names.setdefault(part.label, set())
            pairs = dict.fromkeys((row["item"], row["name"]) for row in part.rows)
            names.update(name for _, name in pairs)
            path = _write(folder / f"rel-{part.rel_type}.csv", [":START_ID(Item)", f":END_ID({part.label})"], pairs)
            arguments.append(f"--relationships={part.rel_type}={path}")
        elif part.kind == "links" and part.rel_type:
            pairs = dict.fromkeys((row["src"], row["dst"]) for row in part.rows)
            path = _write(folder / f"rel-{part.rel_type}.csv", [":START_ID(Item)", ":END_ID(Item)"], pairs)
            arguments.append(f"--relationships={part.rel_type}={path}")
        elif part.kind == "ratings":
            header = [":START_ID(User)", ":END_ID(Item)", "rating:double", "rated_ts:long", "ts:long"]
            path = _write(folder / f"rel-{RATED}.csv", header, _folded_ratings(part.rows))
            arguments.append(f"--relationships={RATED}={path}")
    for label, names in attribute_names.items():
        path = _write(
            folder / f"node-{label}.csv", [f"name:ID({label})", "dataset"], ([n, dataset.name] for n in sorted(names))
        )
        arguments.append(f"--nodes={label}={path}")
    return arguments


def bulk_load(
    dataset: ProcessedDataset,
    connect: Callable[[], neo4j.Driver],
    *,
    database: str,
    target: str,
    import_command: str,
    folder: Path,
    split: GraphSplit = "all",
    replace_database: bool = False,
    wait_s: float = 300.0,
    log: Any = print,
) -> LoadReport:
    """Write the import files, run `import_command`, wait for the server, add constraints, verify counts.

    `connect` opens a driver: one before the import and a fresh one after it, because a driver's bookmarks
    name transactions of the replaced store, which the new store would wait for in vain."""
    started = time.perf_counter()
    with connect() as driver:
        _check_replaceable(driver, database, replace_database=replace_database)
    parts = graph_parts(dataset, split)
    log(f"writing the importer's CSV files to {folder}")
    arguments = write_import_files(dataset, parts, folder)
    if _has_line_breaks(parts):
        arguments.append("--multiline-fields=true")
    # The database first: the importer's file options take a variable number of values.
    command = [
        *shlex.split(import_command),
        database,
        "--overwrite-destination=true",
        f"--report-file={folder / 'import.report'}",
        *arguments,
    ]
    log(f"running {shlex.join(command[:6])} … ({len(command)} arguments; the server must be stopped for it)")
    finished = subprocess.run(command, check=False)
    if finished.returncode != 0:
        raise GraphError(
            f"the import command failed (exit {finished.returncode}): {import_command!r}; its output is above. "
            "Neo4j's importer needs the server stopped (see README: bulk loads)"
        )
    meta = load_meta(dataset, split)
    with connect() as driver:
        _wait_for(driver, database, wait_s)
        writer = Neo4jGraphWriter(driver, database=database)
        writer.begin_load(meta, dataset.schema)  # constraints and the load record on the imported store
        counts = verified_counts(writer, dataset.name, expected_counts(parts, []), target=target, split=split)
        writer.complete_load(meta)
    return LoadReport(
        dataset=dataset.name,
        split=split,
        data_hash=meta.data_hash,
        target=target,
        rows=sum(len(part.rows) for part in parts),
        batch_size=0,
        wiped_previous=False,
        live_items=0,
        live_events=0,
        live_events_skipped=0,
        seconds=round(time.perf_counter() - started, 3),
        counts=counts,
    )


def _check_replaceable(driver: neo4j.Driver, database: str, *, replace_database: bool) -> None:
    try:
        records, _, _ = driver.execute_query(cypher_library()["database_contents"], database_=database)
    except ServiceUnavailable as e:
        raise GraphUnavailableError(
            f"a bulk load first checks what the database holds, and Neo4j is unreachable: {e}"
        ) from e
    except Neo4jError as e:
        raise GraphError(f"Neo4j rejected the database check: {e.message}") from e
    contents = records[0].data()
    if contents["live_records"]:
        raise RequestError(
            f"database {database!r} holds {contents['live_records']:,} live records (API events or catalogue "
            "items) that exist nowhere else, and a bulk import replaces the whole database: export them with "
            "`kgrank graph events` / `kgrank graph catalog`, add them with `kgrank data prepare --events/--catalog`, "
            "or load online (without --bulk), which keeps them"
        )
    if contents["nodes"] and not replace_database:
        raise RequestError(
            f"database {database!r} is not empty ({contents['nodes']:,} nodes) and a bulk import replaces all of "
            "it: pass --replace-database to do so, or load online (without --bulk)"
        )


def _wait_for(driver: neo4j.Driver, database: str, wait_s: float) -> None:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            driver.execute_query("RETURN 1", database_=database)
            return
        except (ServiceUnavailable, Neo4jError, OSError) as e:
            if time.monotonic() > deadline:
                raise GraphUnavailableError(
                    f"the import finished but Neo4j did not answer within {wait_s:.0f} s ({e}); start it and run "
                    "`kgrank graph load` without --bulk to verify and complete the load"
                ) from e
            time.sleep(1.0)


def _users(part: GraphPart, dataset: str) -> Any:
    return ([row["id"], row["idx"], dataset] for row in part.rows)


def _folded_ratings(rows: list[dict[str, Any]]) -> Any:
    """One row per (user, item), folded as cypher/load_ratings.cypher folds them: ts the latest seen, rating the
    latest rated event's (ties: the later row)."""
    folded: dict[tuple[str, str], list[Any]] = {}
    for row in rows:
        key = (row["user"], row["item"])
        state = folded.get(key)
        if state is None:
            state = folded[key] = [None, None, row["ts"]]
        if row["rating"] is not None and (state[1] is None or row["ts"] >= state[1]):
            state[0], state[1] = row["rating"], row["ts"]
        state[2] = max(state[2], row["ts"])
    return ([user, item, *state] for (user, item), state in folded.items())


def _write(path: Path, header: list[str], rows: Any) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _has_line_breaks(parts: list[GraphPart]) -> bool:
    """Whether a title, property or attribute name spans lines: the importer then needs --multiline-fields
    (slower: it cannot split files between threads). Ids cannot: they are printable by contract."""
    for part in parts:
        for row in part.rows:
            texts = [row.get("title"), row.get("name"), *row.get("properties", {}).values()]
            if any(isinstance(text, str) and ("\n" in text or "\r" in text) for text in texts):
                return True
    return False
