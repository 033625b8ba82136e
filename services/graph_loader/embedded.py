"""The embedded graph: the same nodes and relationships as Neo4j, in one SQLite file, no server.

MERGE semantics come from UNIQUE constraints plus upserts, so re-loading changes nothing, and
every batch is one transaction, so a killed load leaves a consistent (resumable) file. Reads are
the primitives relation paths need: node lookup, a user's rating history, neighbours by type.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.core.errors import GraphError
from services.graph_loader.catalog import CatalogItem
from services.graph_loader.events import LiveEvent, RecordedEvent
from services.graph_loader.records import GraphCounts, GraphPart, LoadMeta
from services.graph_loader.schema import ITEM_LABEL, RATED, USER_LABEL, GraphSchema

_SCHEMA = """
CREATE TABLE IF NOT EXISTS datasets (
    name TEXT PRIMARY KEY, data_hash TEXT NOT NULL, split TEXT NOT NULL, status TEXT NOT NULL,
    kgrank_version TEXT NOT NULL, started_at TEXT NOT NULL, completed_at TEXT
);
CREATE TABLE IF NOT EXISTS nodes (
    id INTEGER PRIMARY KEY, dataset TEXT NOT NULL, label TEXT NOT NULL, key TEXT NOT NULL,
    idx INTEGER, title TEXT, properties TEXT NOT NULL DEFAULT '{}',
    UNIQUE (dataset, label, key)
);
CREATE TABLE IF NOT EXISTS rels (
    id INTEGER PRIMARY KEY, type TEXT NOT NULL, src INTEGER NOT NULL REFERENCES nodes(id),
    dst INTEGER NOT NULL REFERENCES nodes(id), rating REAL, ts INTEGER,
    UNIQUE (src, type, dst)
);
CREATE INDEX IF NOT EXISTS rels_by_dst ON rels (dst, type);
CREATE TABLE IF NOT EXISTS events (
    dataset TEXT NOT NULL, id TEXT NOT NULL, user_key TEXT NOT NULL, item_key TEXT NOT NULL,
    rating REAL, ts INTEGER NOT NULL, recorded_at REAL NOT NULL,
    PRIMARY KEY (dataset, id)
);
CREATE INDEX IF NOT EXISTS events_by_user ON events (dataset, user_key);
CREATE TABLE IF NOT EXISTS catalog (
    dataset TEXT NOT NULL, id TEXT NOT NULL, title TEXT NOT NULL, attributes TEXT NOT NULL, recorded_at REAL NOT NULL,
    PRIMARY KEY (dataset, id)
);
"""

# Rows per `IN (...)` list: far below SQLite's limit on bound variables.
_CHUNK = 500

_NODE_UPSERT = """
INSERT INTO nodes (dataset, label, key, idx, title, properties) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (dataset, label, key) DO UPDATE SET
    idx = COALESCE(excluded.idx, idx), title = COALESCE(excluded.title, title),
    properties = json_patch(properties, excluded.properties)
"""
# The event fold of services/graph_loader/events.py: `ts` is the latest time seen, `rating` the one of the
# latest rated event (ties: the row applied last). Every SET reads the old row, so the three agree.
_REL_INSERT = """
INSERT INTO rels (type, src, dst, rating, ts, rated_ts)
SELECT ?, s.id, d.id, ?, ?, ? FROM nodes s, nodes d
WHERE s.dataset = ? AND s.label = ? AND s.key = ? AND d.dataset = ? AND d.label = ? AND d.key = ?
ON CONFLICT (src, type, dst) DO UPDATE SET
    rating = CASE WHEN excluded.rating IS NOT NULL AND (rels.rated_ts IS NULL OR excluded.rated_ts >= rels.rated_ts)
        THEN excluded.rating ELSE rels.rating END,
    rated_ts = CASE WHEN excluded.rating IS NOT NULL AND (rels.rated_ts IS NULL OR excluded.rated_ts >= rels.rated_ts)
        THEN excluded.rated_ts ELSE rels.rated_ts END,
    ts = CASE WHEN rels.ts IS NULL OR excluded.ts > rels.ts THEN excluded.ts ELSE rels.ts END
"""


@dataclass(frozen=True)
class NodeRow:
    id: int
    label: str
    key: str
    idx: int | None
    title: str | None


@dataclass(frozen=True)
class RelRow:
    id: int
    type: str
    src: int
    dst: int


@dataclass(frozen=True)
class RatingRow:
    item: NodeRow
    rating: float | None
    ts: int


class EmbeddedGraph:
    """A knowledge graph in a SQLite file; safe to share between threads (one lock, short operations)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(_SCHEMA)
            _add_rated_ts(self._db)
        except sqlite3.DatabaseError as e:
            raise GraphError(f"{self.path}: not a usable embedded graph file: {e}", path=str(self.path)) from e
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _read(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, parameters).fetchall()

    # -- GraphWriter -------------------------------------------------------------------------------

    def begin_load(self, meta: LoadMeta, schema: GraphSchema) -> bool:
        with self._transaction() as db:
            row = db.execute("SELECT data_hash, split FROM datasets WHERE name = ?", (meta.dataset,)).fetchone()
            wipe = row is not None and tuple(row) != (meta.data_hash, meta.split)
            if wipe:
                _wipe(db, meta.dataset)
            db.execute(
                "INSERT INTO datasets VALUES (?, ?, ?, 'loading', ?, datetime('now'), NULL) "
                "ON CONFLICT (name) DO UPDATE SET data_hash = excluded.data_hash, split = excluded.split, "
                "status = 'loading', kgrank_version = excluded.kgrank_version, "
                "started_at = excluded.started_at, completed_at = NULL",
                (meta.dataset, meta.data_hash, meta.split, meta.kgrank_version),
            )
        return wipe

    def write(self, dataset: str, part: GraphPart, rows: list[dict[str, Any]]) -> None:
        with self._transaction() as db:
            if part.kind == "users":
                db.executemany(_NODE_UPSERT, [(dataset, USER_LABEL, r["id"], r["idx"], None, "{}") for r in rows])
            elif part.kind == "items":
                db.executemany(
                    _NODE_UPSERT,
                    [(dataset, ITEM_LABEL, r["id"], r["idx"], r["title"], json.dumps(r["properties"])) for r in rows],
                )
            elif part.kind == "attributes":
                label, rel_type = _required(part.label), _required(part.rel_type)
                # Like the Cypher MATCH on the item: rows whose item is not in the graph create nothing.
                present = self._existing_items(db, dataset, {r["item"] for r in rows})
                kept = [r for r in rows if r["item"] in present]
                db.executemany(_NODE_UPSERT, [(dataset, label, r["name"], None, None, "{}") for r in kept])
                db.executemany(
                    _REL_INSERT,
                    [
                        (rel_type, None, None, None, dataset, ITEM_LABEL, r["item"], dataset, label, r["name"])
                        for r in kept
                    ],
                )
            elif part.kind == "links":
                rel_type = _required(part.rel_type)
                db.executemany(
                    _REL_INSERT,
                    [
                        (rel_type, None, None, None, dataset, ITEM_LABEL, r["src"], dataset, ITEM_LABEL, r["dst"])
                        for r in rows
                    ],
                )
            else:
                db.executemany(_REL_INSERT, [_rating_parameters(dataset, r) for r in rows])

    def complete_load(self, meta: LoadMeta) -> None:
        with self._transaction() as db:
            updated = db.execute(
                "UPDATE datasets SET status = 'complete', completed_at = datetime('now') "
                "WHERE name = ? AND data_hash = ?",
                (meta.dataset, meta.data_hash),
            ).rowcount
        if not updated:
            raise GraphError(f"the load of {meta.dataset} was replaced by another load while running")

    def drop(self, dataset: str) -> None:
        with self._transaction() as db:
            _wipe(db, dataset)
            db.execute("DELETE FROM events WHERE dataset = ?", (dataset,))
            db.execute("DELETE FROM catalog WHERE dataset = ?", (dataset,))
            db.execute("DELETE FROM datasets WHERE name = ?", (dataset,))

    # -- the live event log ----------------------------------------------------------------------------

    def record_event(self, dataset: str, event: LiveEvent) -> RecordedEvent | None:
        """Append `event` and fold it into the user's RATED edge, in one transaction; None if the item is not
        in the graph. An event id already in the log changes nothing and returns the stored event."""
        with self._transaction() as db:
            if not self._existing_items(db, dataset, {event.item_id}):
                return None
            created = db.execute(
                "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dataset, id) DO NOTHING",
                (
                    dataset,
                    event.event_id,
                    event.user_id,
                    event.item_id,
                    event.rating,
                    event.timestamp,
                    event.recorded_at,
                ),
            ).rowcount
            if created:
                db.execute(_NODE_UPSERT, (dataset, USER_LABEL, event.user_id, None, None, "{}"))
                db.execute(_REL_INSERT, _rating_parameters(dataset, event.rating_row()))
            (stored,) = _select_events(db, "dataset = ? AND id = ?", (dataset, event.event_id))
            return RecordedEvent(
                event=stored, created=bool(created), user_version=_user_version(db, dataset, stored.user_id)
            )

    def user_state(self, dataset: str, user_id: str) -> tuple[dict[str, Any] | None, int]:
        """The dataset's load record (with the living catalogue's state) and the user's version, read together."""
        with self._lock:
            status = _status(self._db, dataset)
            if status is not None:
                count, latest = self._db.execute(
                    "SELECT count(*), max(recorded_at) FROM catalog WHERE dataset = ?", (dataset,)
                ).fetchone()
                status |= {"catalog_items": count, "catalog_changed": latest}
            return status, _user_version(self._db, dataset, user_id)

    # -- the living catalogue ----------------------------------------------------------------------------

    def put_catalog_item(self, dataset: str, item: CatalogItem, schema: GraphSchema) -> bool:
        """Create or replace a live item: its catalogue entry, Item node and attribute relationships, in one
        transaction (attribute nodes no item uses any more go). True if the entry is new."""
        with self._transaction() as db:
            created = not db.execute(
                "SELECT 1 FROM catalog WHERE dataset = ? AND id = ?", (dataset, item.item_id)
            ).fetchone()
            db.execute(
                "INSERT INTO catalog VALUES (?, ?, ?, ?, ?) ON CONFLICT (dataset, id) DO UPDATE SET "
                "title = excluded.title, attributes = excluded.attributes, recorded_at = excluded.recorded_at",
                (dataset, item.item_id, item.title, json.dumps(item.attributes, sort_keys=True), item.recorded_at),
            )
            db.execute(_NODE_UPSERT, (dataset, ITEM_LABEL, item.item_id, None, item.title, "{}"))
            (node,) = db.execute(
                "SELECT id FROM nodes WHERE dataset = ? AND label = ? AND key = ?", (dataset, ITEM_LABEL, item.item_id)
            ).fetchone()
            types = list(schema.attributes.values())
            old = [
                row[0]
                for row in db.execute(
                    f"SELECT dst FROM rels WHERE src = ? AND type IN ({','.join('?' * len(types))})",  # noqa: S608
                    (node, *types),
                )
            ]
            db.execute(f"DELETE FROM rels WHERE src = ? AND type IN ({','.join('?' * len(types))})", (node, *types))  # noqa: S608
            for target in old:
                db.execute(
                    "DELETE FROM nodes WHERE id = ? AND NOT EXISTS (SELECT 1 FROM rels WHERE src = ? OR dst = ?)",
                    (target, target, target),
                )
            for label, names in item.attributes.items():
                rel_type = schema.attributes[label]
                db.executemany(_NODE_UPSERT, [(dataset, label, name, None, None, "{}") for name in names])
                db.executemany(
                    _REL_INSERT,
                    [
                        (rel_type, None, None, None, dataset, ITEM_LABEL, item.item_id, dataset, label, name)
                        for name in names
                    ],
                )
        return created

    def catalog(self, dataset: str) -> list[CatalogItem]:
        rows = self._read(
            "SELECT id, title, attributes, recorded_at FROM catalog WHERE dataset = ? ORDER BY id", (dataset,)
        )
        return [CatalogItem(item_id=r[0], title=r[1], attributes=json.loads(r[2]), recorded_at=r[3]) for r in rows]

    def events(self, dataset: str) -> list[LiveEvent]:
        """The whole log of `dataset`, in event order."""
        with self._lock:
            return _select_events(self._db, "dataset = ?", (dataset,))

    def counts(self, dataset: str) -> GraphCounts:
        nodes = self._read("SELECT label, count(*) FROM nodes WHERE dataset = ? GROUP BY label", (dataset,))
        relationships = self._read(
            "SELECT r.type, count(*) FROM rels r JOIN nodes n ON n.id = r.src WHERE n.dataset = ? GROUP BY r.type",
            (dataset,),
        )
        return GraphCounts(nodes=dict(nodes), relationships=dict(relationships))

    # -- reads for relation paths ---------------------------------------------------------------------

    def status(self, dataset: str) -> dict[str, Any] | None:
        with self._lock:
            return _status(self._db, dataset)

    def find_nodes(self, dataset: str, label: str, keys: Iterable[str]) -> dict[str, NodeRow]:
        with self._lock:
            rows = _select_in(
                self._db,
                "SELECT id, label, key, idx, title FROM nodes WHERE dataset = ? AND label = ? AND key IN ({marks})",
                list(dict.fromkeys(keys)),
                lambda chunk: (dataset, label, *chunk),
            )
        return {row[2]: NodeRow(*row) for row in rows}

    def nodes_by_id(self, ids: Iterable[int]) -> dict[int, NodeRow]:
        with self._lock:
            rows = _select_in(
                self._db,
                "SELECT id, label, key, idx, title FROM nodes WHERE id IN ({marks})",
                sorted(set(ids)),
                tuple,
            )
        return {row[0]: NodeRow(*row) for row in rows}

    def ratings(self, user: int, *, before: tuple[int, int] | None, limit: int) -> list[RatingRow]:
        """The user's last `limit` RATED edges in (ts, item idx) order, strictly before `before` if given."""
        cutoff = "" if before is None else "AND (r.ts < ? OR (r.ts = ? AND n.idx < ?))"
        rows = self._read(
            "SELECT n.id, n.label, n.key, n.idx, n.title, r.rating, r.ts "  # noqa: S608 - fixed SQL text
            "FROM rels r JOIN nodes n ON n.id = r.dst "
            f"WHERE r.src = ? AND r.type = ? {cutoff} ORDER BY r.ts DESC, n.idx DESC LIMIT ?",
            (user, RATED, *(() if before is None else (before[0], before[0], before[1])), limit),
        )
        return [RatingRow(NodeRow(*row[:5]), row[5], row[6]) for row in reversed(rows)]

    def user_items(self, dataset: str, user_id: str) -> list[str]:
        """Every item the user has a RATED edge to, oldest first ((ts, item idx) order)."""
        rows = self._read(
            "SELECT n.key FROM nodes u JOIN rels r ON r.src = u.id JOIN nodes n ON n.id = r.dst "
            "WHERE u.dataset = ? AND u.label = ? AND u.key = ? AND r.type = ? ORDER BY r.ts, n.idx",
            (dataset, USER_LABEL, user_id, RATED),
        )
        return [row[0] for row in rows]

    def degrees(self, nodes: Iterable[int], types: Sequence[str]) -> dict[int, int]:
        """How many relationships of one of `types` touch each of `nodes` (index counts, no rows read)."""
        type_marks = ",".join("?" * len(types))
        with self._lock:
            rows = _select_in(
                self._db,
                # Only "?" placeholders are formatted in; values are bound.
                f"SELECT src, count(*) FROM rels WHERE src IN ({{marks}}) AND type IN ({type_marks}) GROUP BY src "  # noqa: S608
                "UNION ALL "
                f"SELECT dst, count(*) FROM rels WHERE dst IN ({{marks}}) AND type IN ({type_marks}) GROUP BY dst",
                sorted(set(nodes)),
                lambda chunk: (*chunk, *types, *chunk, *types),
            )
        degrees: dict[int, int] = {}
        for node, count in rows:
            degrees[node] = degrees.get(node, 0) + count
        return degrees

    def neighbours(self, nodes: Iterable[int], types: Sequence[str]) -> list[RelRow]:
        """Every relationship of one of `types` touching one of `nodes`, in either direction."""
        type_marks = ",".join("?" * len(types))
        with self._lock:
            rows = _select_in(
                self._db,
                # Only "?" placeholders are formatted in; values are bound.
                f"SELECT id, type, src, dst FROM rels WHERE src IN ({{marks}}) AND type IN ({type_marks}) "  # noqa: S608
                "UNION "
                f"SELECT id, type, src, dst FROM rels WHERE dst IN ({{marks}}) AND type IN ({type_marks})",
                sorted(set(nodes)),
                lambda chunk: (*chunk, *types, *chunk, *types),
            )
        return list({row[0]: RelRow(*row) for row in rows}.values())

    @staticmethod
    def _existing_items(db: sqlite3.Connection, dataset: str, keys: set[str]) -> set[str]:
        rows = _select_in(
            db,
            "SELECT key FROM nodes WHERE dataset = ? AND label = ? AND key IN ({marks})",
            sorted(keys),
            lambda chunk: (dataset, ITEM_LABEL, *chunk),
        )
        return {row[0] for row in rows}


def _select_in(
    db: sqlite3.Connection,
    sql: str,
    values: Sequence[Any],
    parameters: Callable[[Sequence[Any]], Sequence[Any]],
) -> list[tuple[Any, ...]]:
    """Run `sql` once per chunk of `values`; each `{marks}` becomes the chunk's `?` placeholders."""
    rows: list[tuple[Any, ...]] = []
    for start in range(0, len(values), _CHUNK):
        chunk = values[start : start + _CHUNK]
        query = sql.format(marks=",".join("?" * len(chunk)))
        rows.extend(db.execute(query, parameters(chunk)).fetchall())
    return rows


def _status(db: sqlite3.Connection, dataset: str) -> dict[str, Any] | None:
    row = db.execute(
        "SELECT data_hash, split, status, completed_at FROM datasets WHERE name = ?", (dataset,)
    ).fetchone()
    return dict(zip(("data_hash", "split", "status", "completed_at"), row, strict=True)) if row else None


def _user_version(db: sqlite3.Connection, dataset: str, user_id: str) -> int:
    return db.execute("SELECT count(*) FROM events WHERE dataset = ? AND user_key = ?", (dataset, user_id)).fetchone()[
        0
    ]


def _select_events(db: sqlite3.Connection, where: str, parameters: Sequence[Any]) -> list[LiveEvent]:
    rows = db.execute(
        "SELECT id, user_key, item_key, rating, ts, recorded_at FROM events "  # noqa: S608 - fixed SQL text
        f"WHERE {where} ORDER BY ts, recorded_at, id",
        parameters,
    ).fetchall()
    return [
        LiveEvent(event_id=r[0], user_id=r[1], item_id=r[2], rating=r[3], timestamp=r[4], recorded_at=r[5])
        for r in rows
    ]


def _rating_parameters(dataset: str, row: dict[str, Any]) -> tuple[Any, ...]:
    rated_ts = None if row["rating"] is None else row["ts"]
    return (
        RATED,
        row["rating"],
        row["ts"],
        rated_ts,
        dataset,
        USER_LABEL,
        row["user"],
        dataset,
        ITEM_LABEL,
        row["item"],
    )


def _add_rated_ts(db: sqlite3.Connection) -> None:
    """Files written before the event log have no `rated_ts`: their ratings date from their edge's `ts`."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(rels)")}
    if "rated_ts" not in columns:
        db.execute("ALTER TABLE rels ADD COLUMN rated_ts INTEGER")
        db.execute("UPDATE rels SET rated_ts = ts WHERE rating IS NOT NULL")


def _wipe(db: sqlite3.Connection, dataset: str) -> None:
    db.execute(
        "DELETE FROM rels WHERE src IN (SELECT id FROM nodes WHERE dataset = ?) "
        "OR dst IN (SELECT id FROM nodes WHERE dataset = ?)",
        (dataset, dataset),
    )
    db.execute("DELETE FROM nodes WHERE dataset = ?", (dataset,))


def _required(value: str | None) -> str:
    if value is None:
        raise GraphError("graph part without its label or relationship type")
    return value
