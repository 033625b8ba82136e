"""Options several commands share, and how they combine with KGRANK_* settings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from services.core.errors import ConfigError
from services.core.settings import Settings
from services.graph_loader.dataset import ProcessedDataset
from services.ranker.context import GraphContext
from services.ranker.graphs import open_path_source
from services.ranker.paths import PathConfig, PathSource

Neo4jUri = Annotated[
    str | None,
    typer.Option(
        "--neo4j-uri",
        help="Neo4j URI: bolt://HOST:7687 for one server, neo4j://HOST:7687 to route reads and writes across a "
        "cluster (+s, +ssc: TLS) (default: KGRANK_NEO4J_URI; unset = embedded graph).",
    ),
]
EmbeddedPath = Annotated[
    Path | None,
    typer.Option("--embedded", help="Embedded graph file (default: DATA/graph.sqlite)."),
]
DataDir = Annotated[Path, typer.Option("--data", help="Processed dataset folder (from `kgrank data prepare`).")]


def output_folder(path: Path) -> Path:
    """Create an --out folder now, so a path kgrank cannot write fails before minutes of work, not after."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{path} exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create {path}: {e.strerror or e}") from e
    return path


def output_file(path: Path) -> Path:
    """Check a file option up front: not a folder, and its folder can be created."""
    if path.is_dir():
        raise ConfigError(f"{path} is a folder; give a file name")
    output_folder(path.parent)
    return path


def settings_for(neo4j_uri: str | None) -> Settings:
    """KGRANK_* settings, with a command-line URI taking precedence."""
    return Settings(neo4j_uri=neo4j_uri) if neo4j_uri else Settings()


def embedded_path_for(data: Path, embedded: Path | None) -> Path:
    return embedded or data / "graph.sqlite"


@contextmanager
def path_source(
    data: Path, dataset: ProcessedDataset, *, neo4j_uri: str | None, embedded: Path | None, config: PathConfig
) -> Iterator[PathSource]:
    """Relation paths from Neo4j (with a URI or KGRANK_NEO4J_URI) or DATA's embedded graph."""
    with open_path_source(
        settings_for(neo4j_uri),
        dataset=dataset.name,
        data_hash=dataset.manifest.data_hash,
        schema=dataset.schema,
        embedded_path=embedded_path_for(data, embedded),
        config=config,
    ) as source:
        yield source


@contextmanager
def graph_context(
    data: Path, dataset: ProcessedDataset, *, neo4j_uri: str | None, embedded: Path | None, config: PathConfig
) -> Iterator[GraphContext]:
    """Relation paths for ranking tasks (see `path_source`)."""
    with path_source(data, dataset, neo4j_uri=neo4j_uri, embedded=embedded, config=config) as source:
        yield GraphContext(dataset, source)
