"""`kgrank serve`: the ranking API under uvicorn, with every setting as an option (it wins over KGRANK_* and
kgrank.toml)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from kgrank.options import check_retriever_run
from kgrank.settings_options import with_setting_options
from services.core.settings import Settings

MAX_WORKERS = 64


@with_setting_options
def serve(
    overrides: dict[str, Any],
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
    /healthz, /readyz, /metrics and the OpenAPI docs at /docs. Writes need an API key or --open-writes."""
    settings = Settings(**overrides)  # before the imports, which take seconds: a bad setting fails at once
    if settings.retriever_dir is not None:
        check_retriever_run(settings.retriever_dir, usage="--retriever {}")
    import uvicorn

    from services.api.app import build_service, create_app
    from services.api.server import check_service, serve_workers, server_config

    # Built before uvicorn starts, so a bad setting ends as one error line instead of a failed startup.
    if workers > 1:
        check_service(settings)
        serve_workers(settings, workers=workers, host=host, port=port, log_level="info")
        return
    app = create_app(settings, service=build_service(settings))
    uvicorn.Server(server_config(app, settings, host=host, port=port, log_level="info")).run()
