"""The processed dataset on disk: stable id maps, ordered interactions with their split, item metadata.

Layout of a processed folder (written atomically; `manifest.json` carries the content hash):
    manifest.json   name, kind, format version, data hash, source file hashes, kgrank version
    schema.json     attribute labels -> relationship types, item-link types
    users.csv       idx,id            (idx 1..U, sorted raw ids; 0 is padding)
    items.jsonl     {"idx", "id", "title", "attributes", "links", "properties"} (idx 1..I, sorted)
    interactions.csv user,item,rating,timestamp,split  (dense ids; per user ordered by (timestamp, item))
    stats.json      counts after filtering and what the filters removed
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.core.atomic import KeepExisting, atomic_directory, write_json
from services.core.errors import DatasetFormatError, DatasetNotFoundError
from services.graph_loader.schema import GraphSchema

FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
SPLITS = ("train", "val", "test")
Split = Literal["train", "val", "test"]
CONTENT_FILES = ("schema.json", "users.csv", "items.jsonl", "interactions.csv")
DATASET_MARKERS = (MANIFEST_FILE, *CONTENT_FILES)  # what every processed folder holds

ModelT = TypeVar("ModelT", bound=BaseModel)


class ItemRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    idx: int = Field(ge=1)
    id: str
    title: str
    attributes: dict[str, list[str]] = Field(default_factory=dict)
    links: dict[str, list[str]] = Field(default_factory=dict)
    properties: dict[str, str] = Field(default_factory=dict)


class SourceFile(BaseModel):
    name: str
    bytes: int
    sha256: str


class Manifest(BaseModel):
    format_version: int = FORMAT_VERSION
    name: str
    kind: str
    data_hash: str
    min_interactions: int
    kgrank_version: str
    sources: list[SourceFile]


class DatasetStats(BaseModel):
    users: int
    items: int
    interactions: int
    raw_users: int
    raw_items: int
    raw_interactions: int
    dropped_duplicates: int
    dropped_untitled: int
    k_core_rounds: int
    split_interactions: dict[str, int]
    attribute_nodes: dict[str, int]
    attribute_edges: dict[str, int]
    link_edges: dict[str, int]
    density: float
    mean_sequence_length: float


@dataclass
class ProcessedDataset:
    manifest: Manifest
    schema: GraphSchema
    users: list[str]
    items: list[ItemRecord]
    interactions: pd.DataFrame
    stats: DatasetStats

    @property
    def name(self) -> str:
        return self.manifest.name

    def user_id(self, idx: int) -> str:
        return self.users[idx - 1]

    def item(self, idx: int) -> ItemRecord:
        return self.items[idx - 1]

    def save(self, root: Path) -> None:
        """Write every file into a staging folder and swap it in, so no half-written dataset remains.

        When ROOT already holds the same data (equal content hash), it is kept, and with it what was built
        from it (graph.sqlite, the path cache); only manifest.json and stats.json are rewritten.
        """
        root = Path(root)
        with atomic_directory(root, markers=DATASET_MARKERS) as staging:
            write_json(staging / "schema.json", self.schema.model_dump(mode="json"))
            pd.DataFrame({"idx": range(1, len(self.users) + 1), "id": self.users}).to_csv(
                staging / "users.csv", index=False
            )
            (staging / "items.jsonl").write_text(
                "".join(item.model_dump_json() + "\n" for item in self.items), encoding="utf-8"
            )
            self.interactions.to_csv(staging / "interactions.csv", index=False)
            self.manifest = self.manifest.model_copy(update={"data_hash": content_hash(staging)})
            unchanged = _holds_data(root, self.manifest.data_hash)
            folder = root if unchanged else staging
            write_json(folder / "stats.json", self.stats.model_dump(mode="json"))
            write_json(folder / MANIFEST_FILE, self.manifest.model_dump(mode="json"))
            if unchanged:
                raise KeepExisting

    @classmethod
    def load(cls, root: Path) -> ProcessedDataset:
        root = Path(root)
        manifest_path = root / MANIFEST_FILE
        if not manifest_path.is_file():
            raise DatasetNotFoundError(
                f"{root}: not a processed dataset (no manifest.json); run `kgrank data prepare` first",
                path=str(root),
            )
        manifest = _model(Manifest, manifest_path)
        if manifest.format_version != FORMAT_VERSION:
            raise DatasetFormatError(
                f"{root}: dataset format {manifest.format_version}, this kgrank reads {FORMAT_VERSION}; "
                "re-run `kgrank data prepare`",
                path=str(root),
            )
        users = pd.read_csv(root / "users.csv", dtype={"idx": "int64", "id": str}, keep_default_na=False)
        items = [
            ItemRecord.model_validate_json(line)
            for line in (root / "items.jsonl").read_text(encoding="utf-8").splitlines()
            if line
        ]
        interactions = pd.read_csv(
            root / "interactions.csv",
            dtype={"user": "int64", "item": "int64", "rating": "float64", "timestamp": "int64", "split": str},
        )
        return cls(
            manifest=manifest,
            schema=_model(GraphSchema, root / "schema.json"),
            users=users["id"].tolist(),
            items=items,
            interactions=interactions,
            stats=_model(DatasetStats, root / "stats.json"),
        )


def _holds_data(root: Path, data_hash: str) -> bool:
    """ROOT is a processed folder whose content files hash to `data_hash` (checked, not read from its manifest)."""
    return all((root / name).is_file() for name in DATASET_MARKERS) and content_hash(root) == data_hash


def content_hash(root: Path) -> str:
    """sha256 over the content files in a fixed order: equal data gives an equal hash."""
    digest = hashlib.sha256()
    for name in CONTENT_FILES:
        digest.update(name.encode())
        digest.update((root / name).read_bytes())
    return digest.hexdigest()


def file_digest(path: Path) -> SourceFile:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return SourceFile(name=path.name, bytes=path.stat().st_size, sha256=digest.hexdigest())


def _model(model: type[ModelT], path: Path) -> ModelT:
    if not path.is_file():
        raise DatasetNotFoundError(f"{path}: missing from the processed dataset", path=str(path))
    try:
        return model.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, ValidationError) as e:
        raise DatasetFormatError(f"{path}: invalid content: {e}", path=str(path)) from e
