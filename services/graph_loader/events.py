"""Live interactions as an append-only event log: what the API records and the loader replays.

Every POST /interactions is kept as one event (its id, user, item, optional rating, timestamp and the
server time it was recorded), never updated and never deleted by a load. The user–item RATED edge is
derived from all events of the pair (the dataset's row counts as one): its `ts` is the last time the
user was seen with the item, its `rating` the rating of the latest rated event (`rated_ts`). Both graphs
apply that fold the same way, in event order (timestamp, then recording time, then id), so replaying
the log onto a fresh load gives the same edges the live writes gave.

A user's version is the number of their live events: durable, bumped in the transaction that records
an event, and what cached rankings are keyed on.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from services.core.atomic import atomic_write_text
from services.core.errors import DatasetFormatError

EVENT_COLUMNS = ("event_id", "user_id", "item_id", "rating", "timestamp", "recorded_at")


class LiveEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    event_id: str
    user_id: str
    item_id: str
    rating: float | None
    timestamp: int
    recorded_at: float  # server time, unix seconds

    def same_as(self, other: LiveEvent, *, compare_timestamp: bool) -> bool:
        """Whether `other` is a retry of this event (the timestamp only counts when the client gave one)."""
        fields = ("user_id", "item_id", "rating") + (("timestamp",) if compare_timestamp else ())
        return all(getattr(self, name) == getattr(other, name) for name in fields)

    def rating_row(self) -> dict[str, object]:
        """The event as a row of the graph's ratings part (what the fold applies)."""
        return {"user": self.user_id, "item": self.item_id, "rating": self.rating, "ts": self.timestamp}


class RecordedEvent(BaseModel):
    """What the graph answers to a write: the stored event, whether this call created it, the user's version."""

    event: LiveEvent
    created: bool
    user_version: int


def event_order(events: Iterable[LiveEvent]) -> list[LiveEvent]:
    return sorted(events, key=lambda e: (e.timestamp, e.recorded_at, e.event_id))


def write_events_csv(events: Iterable[LiveEvent], path: Path) -> int:
    """The log as CSV (EVENT_COLUMNS, event order), written atomically; returns how many events it holds."""
    ordered = event_order(events)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(EVENT_COLUMNS)
    for event in ordered:
        rating = "" if event.rating is None else repr(event.rating)
        writer.writerow(
            [event.event_id, event.user_id, event.item_id, rating, event.timestamp, repr(event.recorded_at)]
        )
    atomic_write_text(path, text.getvalue())
    return len(ordered)


def read_events_csv(path: Path) -> list[LiveEvent]:
    """An exported log back as events; DatasetFormatError naming the line when it is not one."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if tuple(reader.fieldnames or ()) != EVENT_COLUMNS:
                raise DatasetFormatError(
                    f"{path}: not an exported event log (columns {reader.fieldnames}, expected {list(EVENT_COLUMNS)})"
                )
            events = []
            for line, row in enumerate(reader, start=2):
                try:
                    rating = float(row["rating"]) if row["rating"] else None
                    if rating is not None and not math.isfinite(rating):
                        raise ValueError("rating is not a finite number")
                    events.append(
                        LiveEvent(
                            event_id=row["event_id"],
                            user_id=row["user_id"],
                            item_id=row["item_id"],
                            rating=rating,
                            timestamp=int(row["timestamp"]),
                            recorded_at=float(row["recorded_at"]),
                        )
                    )
                except (TypeError, ValueError) as e:
                    raise DatasetFormatError(f"{path}, line {line}: {e}") from e
    except OSError as e:
        raise DatasetFormatError(f"cannot read {path}: {e.strerror or e}") from e
    return events
