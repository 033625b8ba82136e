"""Checked file access for readers: every failure names the file and what was expected."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from services.core.errors import DatasetFormatError, DatasetNotFoundError


def require_file(raw_dir: Path, name: str, *, what: str) -> Path:
    path = Path(raw_dir) / name
    if not path.is_file():
        raise DatasetNotFoundError(f"{path}: file not found (expected {what})", path=str(path))
    return path


def read_csv(
    path: Path,
    *,
    columns: list[str],
    encoding: str = "utf-8",
    header: bool = True,
    sep: str = ",",
    names: list[str] | None = None,
) -> pd.DataFrame:
    """Read a delimited file as strings; fail clearly on bad encoding, bad rows or missing columns."""
    try:
        frame = pd.read_csv(
            path,
            sep=sep,
            header=0 if header else None,
            names=names,
            dtype=str,
            keep_default_na=False,
            encoding=encoding,
            quoting=csv.QUOTE_MINIMAL if sep == "," else csv.QUOTE_NONE,
            engine="c",
        )
    except UnicodeDecodeError as e:
        raise DatasetFormatError(
            f"{path}: not valid {encoding} text at byte {e.start}", path=str(path), encoding=encoding
        ) from e
    except pd.errors.EmptyDataError as e:
        raise DatasetFormatError(f"{path}: file is empty (expected columns {columns})", path=str(path)) from e
    except (pd.errors.ParserError, ValueError) as e:
        raise DatasetFormatError(f"{path}: cannot parse as delimited text: {e}", path=str(path)) from e
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise DatasetFormatError(
            f"{path}: missing column(s) {missing}; expected {columns}, found {list(frame.columns)}",
            path=str(path),
            missing=missing,
        )
    return frame


def parse_numbers(frame: pd.DataFrame, column: str, *, path: Path, integer: bool) -> np.ndarray:
    """Convert a string column to numbers, naming the first bad row if any value is not numeric."""
    values = pd.to_numeric(frame[column].str.strip(), errors="coerce")
    bad = values.isna() & (frame[column].str.strip() != "")
    if integer:
        bad |= values.isna() | (values.notna() & (values % 1 != 0))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DatasetFormatError(
            f"{path}: column {column!r} needs {'integers' if integer else 'numbers'}, "
            f"row {row + 1} has {frame[column].iloc[row]!r}",
            path=str(path),
            column=column,
        )
    return values.to_numpy(dtype=np.int64 if integer else np.float64)


def interactions_frame(
    frame: pd.DataFrame, *, path: Path, user: str, item: str, rating: str | None, timestamp: str
) -> pd.DataFrame:
    """Normalise a raw table to the columns user, item, rating, timestamp with checked types."""
    users = frame[user].str.strip()
    items = frame[item].str.strip()
    for column, values in ((user, users), (item, items)):
        if (values == "").any():
            row = int(np.flatnonzero((values == "").to_numpy())[0])
            raise DatasetFormatError(f"{path}: empty {column!r} in row {row + 1}", path=str(path))
    ratings = (
        parse_numbers(frame, rating, path=path, integer=False) if rating is not None else np.full(len(frame), np.nan)
    )
    return pd.DataFrame(
        {
            "user": users.to_numpy(dtype=object),
            "item": items.to_numpy(dtype=object),
            "rating": ratings,
            "timestamp": parse_numbers(frame, timestamp, path=path, integer=True),
        }
    )
