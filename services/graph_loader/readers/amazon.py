"""Amazon reviews: 2014 SNAP `ratings_<Cat>.csv` plus `meta_<Cat>.json[.gz]` (Python literals or JSON lines).

The 2014 metadata lines are Python dict literals, not JSON. They are parsed with `ast.literal_eval`,
which only builds literals and never runs code; 2018-style JSON lines are read with `json`.
"""

from __future__ import annotations

import ast
import gzip
import html
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from tqdm import tqdm

from services.core.errors import DatasetFormatError, DatasetNotFoundError
from services.graph_loader.raw import RawDataset, RawItem, clean_values
from services.graph_loader.readers.files import interactions_frame, read_csv, require_file
from services.graph_loader.schema import STANDARD_LINKS, standard_schema

SNAP_BASE_URL = "http://snap.stanford.edu/data/amazon/productGraph/categoryFiles"
# 2014 keys under "related" and their 2018 top-level equivalents.
_LINK_KEYS = {
    "ALSO_BOUGHT": ("also_bought", "also_buy"),
    "ALSO_VIEWED": ("also_viewed", "also_view"),
    "BOUGHT_TOGETHER": ("bought_together", None),
}
_MAX_LINE_BYTES = 1 << 20


class AmazonReader:
    """One Amazon category; the category is detected from the single `ratings_*.csv` when not given."""

    kind = "amazon"

    def __init__(self, category: str | None = None) -> None:
        self.category = category

    def files_for(self, category: str) -> tuple[str, str]:
        return f"ratings_{category}.csv", f"meta_{category}.json.gz"

    def download_urls(self, base_url: str = SNAP_BASE_URL) -> list[str]:
        if not self.category:
            raise DatasetNotFoundError("downloading Amazon data needs --category (e.g. Beauty)")
        return [f"{base_url.rstrip('/')}/{name}" for name in self.files_for(self.category)]

    def detect_category(self, raw_dir: Path) -> str:
        if self.category:
            return self.category
        found = sorted(path.name[len("ratings_") : -len(".csv")] for path in Path(raw_dir).glob("ratings_*.csv"))
        if len(found) != 1:
            raise DatasetNotFoundError(
                f"{raw_dir}: expected exactly one ratings_<Category>.csv, found {found or 'none'}; pass --category",
                path=str(raw_dir),
            )
        return found[0]

    def read(self, raw_dir: Path, *, name: str | None = None) -> RawDataset:
        category = self.detect_category(raw_dir)
        ratings_name, meta_name = self.files_for(category)
        ratings_path = require_file(raw_dir, ratings_name, what="headerless user,item,rating,timestamp")
        meta_path = Path(raw_dir) / meta_name
        if not meta_path.is_file():
            meta_path = require_file(raw_dir, meta_name.removesuffix(".gz"), what="one product per line")
        columns = ["user", "item", "rating", "timestamp"]
        ratings = read_csv(ratings_path, columns=columns, header=False, names=columns)
        interactions = interactions_frame(
            ratings, path=ratings_path, user="user", item="item", rating="rating", timestamp="timestamp"
        )
        items = {asin: item for asin, item in self._products(meta_path)}
        return RawDataset(
            name=name or f"amazon-{category.lower()}",
            kind=self.kind,
            interactions=interactions,
            items=items,
            schema=standard_schema(["Brand", "Category"], links=STANDARD_LINKS),
            sources=[ratings_path, meta_path],
        )

    def _products(self, path: Path) -> Iterator[tuple[str, RawItem]]:
        with _open_text(path) as handle:
            for number, line in enumerate(tqdm(handle, desc=f"reading {path.name}", unit=" lines"), start=1):
                if not line.strip():
                    continue
                record = parse_product_line(line, path=path, number=number)
                asin = str(record.get("asin") or "").strip()
                if not asin:
                    raise DatasetFormatError(f"{path}:{number}: product without 'asin'", path=str(path))
                yield asin, product_item(record)


def _open_text(path: Path) -> IO[str]:
    try:
        if path.suffix == ".gz":
            return gzip.open(path, "rt", encoding="utf-8")
        return path.open(encoding="utf-8")
    except OSError as e:
        raise DatasetFormatError(f"{path}: cannot open: {e}", path=str(path)) from e


def parse_product_line(line: str, *, path: Path, number: int) -> dict[str, Any]:
    """One metadata line as a dict: JSON first, then a Python literal (never `eval`)."""
    if len(line) > _MAX_LINE_BYTES:
        raise DatasetFormatError(f"{path}:{number}: line longer than {_MAX_LINE_BYTES} bytes", path=str(path))
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        try:
            record = ast.literal_eval(line.strip())
        except (ValueError, SyntaxError, RecursionError, MemoryError, TypeError) as e:
            raise DatasetFormatError(
                f"{path}:{number}: neither JSON nor a Python literal ({type(e).__name__})", path=str(path)
            ) from e
    if not isinstance(record, dict):
        raise DatasetFormatError(f"{path}:{number}: expected one object per line", path=str(path))
    return record


def product_item(record: dict[str, Any]) -> RawItem:
    title = _text(record.get("title"))
    attributes: dict[str, list[str]] = {}
    brand = _text(record.get("brand"))
    if brand:
        attributes["Brand"] = [brand]
    path = first_category_path(record)
    if path:
        attributes["Category"] = path
    related = record.get("related") if isinstance(record.get("related"), dict) else {}
    links: dict[str, list[str]] = {}
    for rel_type, (key_2014, key_2018) in _LINK_KEYS.items():
        values = related.get(key_2014) or (record.get(key_2018) if key_2018 else None) or []
        if isinstance(values, list):
            links[rel_type] = clean_values([str(v) for v in values])
    return RawItem(title=title or None, attributes=attributes, links=links)


def first_category_path(record: dict[str, Any]) -> list[str]:
    """Levels of the first category path below its root (the root names the whole catalogue).

    2014: `categories` is a list of paths (lists); 2018: `category` is one flat path.
    """
    categories = record.get("categories")
    if isinstance(categories, list) and categories and isinstance(categories[0], list):
        path = categories[0]
    elif isinstance(record.get("category"), list):
        path = record["category"]
    else:
        return []
    levels = clean_values([_text(level) for level in path if isinstance(level, str)])
    return levels[1:] if len(levels) > 1 else levels


def _text(value: Any) -> str:
    return " ".join(html.unescape(value).split()) if isinstance(value, str) else ""
