"""Options several commands share, and how they combine with KGRANK_* settings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from services.core.atomic import make_folder
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
Threads = Annotated[
    int | None,
    typer.Option(
        "--threads",
        min=1,
        help="CPU threads torch computes with (default: torch's, one per core). Give fewer when other busy "
        "processes share the cores: oversubscribed, every process slows down many times over.",
    ),
]


def use_threads(threads: int | None) -> None:
    """Apply --threads: torch's intra-op threads, and its inter-op threads, which torch lets a process set
    only once and before its first parallel work, so call this first thing in a command."""
    if threads is None:
        return
    import torch

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(threads)


def output_folder(path: Path) -> Path:
    """Create an --out folder now, so a path kgrank cannot write fails before minutes of work, not after.
    A command that fails removes it again while it is empty (see `kgrank.cli.main`)."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{path} exists and is not a folder")
    try:
        make_folder(path)
    except OSError as e:
        raise ConfigError(f"cannot create {path}: {e.strerror or e}") from e
    return path


def output_file(path: Path) -> Path:
    """Check a file option up front: not a folder, and its folder can be created."""
    if path.is_dir():
        raise ConfigError(f"{path} is a folder; give a file name")
    output_folder(path.parent)
    return path


def check_retriever_run(path: Path, *, usage: str, seed_folders: bool = False) -> None:
    """Refuse PATH unless it holds a retriever run (with `seed_folders`, also a folder of seed-N runs), saying
    what to pass instead: `usage` is how the command takes a run, `{}` standing for it ("--retriever {}").

    A one-seed `kgrank train retriever --out runs/x` writes its run into runs/x itself, several seeds write
    runs/x/seed-N, so runs/x/seed-0 after one seed is a natural wrong guess."""
    from training.retriever import RUN_MARKERS

    def is_run(folder: Path) -> bool:
        return all((folder / marker).is_file() for marker in RUN_MARKERS)

    def seed_runs(folder: Path) -> list[Path]:
        return [run for run in sorted(folder.glob("seed-*")) if is_run(run)]

    if is_run(path) or (seed_folders and seed_runs(path)):
        return
    if seeds := seed_runs(path):
        raise ConfigError(
            f"{path} holds one retriever run per seed ({', '.join(seed.name for seed in seeds)}), not one run: pass "
            f"one of them, e.g. {usage.format(seeds[0])} (`kgrank train ensemble` combines them into one)"
        )
    if is_run(path.parent):
        raise ConfigError(
            f"{path} is not a retriever run, but {path.parent} is (a one-seed `kgrank train retriever` writes its "
            f"run into --out itself): pass {usage.format(path.parent)}"
        )
    if siblings := seed_runs(path.parent):
        raise ConfigError(
            f"{path} is not a retriever run; {path.parent} holds the runs "
            f"{', '.join(sibling.name for sibling in siblings)}: pass e.g. {usage.format(siblings[0])}"
        )
    raise ConfigError(
        f"{path} is not a retriever run (no {' and '.join(RUN_MARKERS)}); make one with "
        f"`kgrank train retriever --out {path}`"
    )


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
