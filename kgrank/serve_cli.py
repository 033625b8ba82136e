"""`kgrank serve`: the ranking API under uvicorn (settings from KGRANK_*; options override them)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from kgrank.options import Neo4jUri
from services.core.settings import Settings

MAX_WORKERS = 64


def serve(
    data: Annotated[Path | None, typer.Option("--data", help="Processed dataset (KGRANK_DATASET_DIR).")] = None,
    model: Annotated[Path | None, typer.Option("--model", help="Ranker checkpoint (KGRANK_MODEL_DIR).")] = None,
    retriever: Annotated[
        Path | None,
        typer.Option(
            "--retriever",
            help="Retriever run whose scores the ranker fuses with (KGRANK_RETRIEVER_DIR); needed when the "
            "checkpoint chose a fusion weight on val.",
        ),
    ] = None,
    fusion: Annotated[
        bool | None, typer.Option("--fusion/--no-fusion", help="Use the checkpoint's fusion (KGRANK_FUSION, on).")
    ] = None,
    neo4j_uri: Neo4jUri = None,
    redis_url: Annotated[
        str | None, typer.Option("--redis-url", help="Redis for the cache (default: KGRANK_REDIS_URL; unset = LRU).")
    ] = None,
    scorer: Annotated[
        Literal["transformers", "vllm"] | None, typer.Option(help="Default: KGRANK_SCORER (transformers).")
    ] = None,
    open_writes: Annotated[
        bool | None,
        typer.Option(
            "--open-writes",
            help="Accept POST /interactions without an API key (KGRANK_OPEN_WRITES): for a local demo only. "
            "Without it and without KGRANK_API_KEY, writes are refused.",
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8080,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=MAX_WORKERS,
            help=f"Worker processes sharing the port (1..{MAX_WORKERS}). Each loads its own copy of the model "
            "(memory × N); without Redis each keeps its own cache; the write rate limit and KGRANK_MAX_CONNECTIONS "
            "apply per worker. POST /admin/reload reaches only the worker that answers it: with N > 1, reload by "
            "restarting the server.",
        ),
    ] = 1,
) -> None:
    """Serve POST /rank (with or without candidates), POST /interactions, PUT /items/{id}, POST /admin/reload,
    /healthz, /readyz, /metrics and the OpenAPI docs at /docs. Writes need KGRANK_API_KEY or --open-writes."""
    import uvicorn

    from services.api.app import build_service, create_app
    from services.api.server import check_service, serve_workers, server_config

    overrides = {
        "dataset_dir": data,
        "model_dir": model,
        "retriever_dir": retriever,
        "fusion": fusion,
        "neo4j_uri": neo4j_uri,
        "redis_url": redis_url,
        "scorer": scorer,
        "open_writes": open_writes,
    }
    settings = Settings(**{key: value for key, value in overrides.items() if value is not None})
    # Built before uvicorn starts, so a bad setting ends as one error line instead of a failed startup.
    if workers > 1:
        check_service(settings)
        serve_workers(settings, workers=workers, host=host, port=port, log_level="info")
        return
    app = create_app(settings, service=build_service(settings))
    uvicorn.Server(server_config(app, settings, host=host, port=port, log_level="info")).run()
