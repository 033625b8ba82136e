"""Options several commands share, and how they combine with KGRANK_* settings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from services.core.settings import Settings

Neo4jUri = Annotated[
    str | None,
    typer.Option(
        "--neo4j-uri", help="Bolt URI of Neo4j (default: KGRANK_NEO4J_URI; unset = embedded graph)."
    ),
]
EmbeddedPath = Annotated[
    Path | None,
    typer.Option("--embedded", help="Embedded graph file (default: DATA/graph.sqlite)."),
]
DataDir = Annotated[
    Path, typer.Option("--data", help="Processed dataset folder (from `kgrank data prepare`).")
]


def settings_for(neo4j_uri: str | None) -> Settings:
    """KGRANK_* settings, with a command-line URI taking precedence."""
    return Settings(neo4j_uri=neo4j_uri) if neo4j_uri else Settings()


def embedded_path_for(data: Path, embedded: Path | None) -> Path:
    return embedded or data / "graph.sqlite"
