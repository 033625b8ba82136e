"""The FastAPI app: routes, API key, error bodies and request metrics. `build_service` wires the parts."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import torch
from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from services.api.auth import (
    API_KEY_HEADER,
    Access,
    RateLimitedError,
    UnauthorizedError,
    WritesClosedError,
    retry_after_header,
)
from services.api.limits import BodySizeLimit
from services.core.errors import (
    ConfigError,
    ConflictError,
    GraphError,
    GraphNotLoadedError,
    GraphUnavailableError,
    KgrankError,
    ModelError,
    RequestError,
)
from services.core.ids import Id
from services.core.settings import Settings, how_to_set
from services.graph_loader.dataset import ProcessedDataset
from services.ranker.context import RANKING_PATHS
from services.ranker.graphs import open_serving_graph
from services.ranker.serving.cache import MemoryCache, RankingCache, RedisCache
from services.ranker.serving.contract import (
    MAX_NAMES_PER_LABEL,
    ErrorBody,
    Health,
    InteractionRequest,
    InteractionResponse,
    ItemRequest,
    ItemResponse,
    RankRequest,
    RankResponse,
    Readiness,
    ReloadRequest,
    ReloadResponse,
)
from services.ranker.serving.metrics import Metrics
from services.ranker.serving.service import RankingService
from services.ranker.serving.units import load_models

logger = logging.getLogger(__name__)
VERSION = "0.1.0"


def build_service(settings: Settings) -> RankingService:
    """Load the dataset and checkpoint named by the settings and connect (lazily) to graph, cache and scorer."""
    if settings.dataset_dir is None or settings.model_dir is None:
        raise ConfigError(
            f"serving needs a processed dataset ({how_to_set('dataset_dir')}) and a ranker checkpoint "
            f"({how_to_set('model_dir')})"
        )
    if settings.threads is not None:  # here, so that every worker process of `kgrank serve --workers N` applies it
        torch.set_num_threads(settings.threads)
    dataset = ProcessedDataset.load(settings.dataset_dir)
    models = load_models(settings, dataset, settings.model_dir, settings.retriever_dir)
    # The paths training and evaluation exported (the prompt shows the last `history_items` of them).
    retriever = models.retriever
    path_config = RANKING_PATHS.model_copy(update={"sequence_length": 0 if retriever is None else retriever.max_len})
    cache: RankingCache = (
        RedisCache(
            settings.redis_url,
            ttl_s=settings.cache_ttl_s,
            timeout_s=settings.redis_timeout_s,
            cluster=settings.redis_cluster,
        )
        if settings.redis_url
        else MemoryCache(entries=settings.cache_entries, ttl_s=settings.cache_ttl_s)
    )
    return RankingService(
        dataset=dataset,
        models=models,
        loader=lambda model_dir, retriever_dir: load_models(settings, dataset, model_dir, retriever_dir),
        graph=open_serving_graph(settings, dataset, settings.dataset_dir, path_config),
        cache=cache,
        scorer_name=settings.scorer,
        metrics=Metrics(),
        explanations_per_item=settings.explanations_per_item,
        retry_after_s=settings.retry_after_s,
    )


def create_app(settings: Settings | None = None, *, service: RankingService | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        running = service or build_service(settings)
        app.state.service = running
        await running.start()
        try:
            yield
        finally:
            await running.close()

    app = FastAPI(
        title="kgrank",
        version=VERSION,
        summary="Knowledge-graph-backed recommendation ranking (LlamaRec-LKG-RAG).",
        lifespan=lifespan,
    )
    app.state.settings = settings  # for the server's limits (services/api/server.py)
    _install_error_handlers(app, settings)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes, read_timeout_s=settings.request_read_timeout_s)
    _install_request_metrics(app)  # added last = outermost: body-limit refusals are observed too
    access = Access(settings)
    if settings.open_writes:
        logger.warning("writes are open to anyone who can reach this server (--open-writes): for local demos only")

    def running(request: Request) -> RankingService:
        return request.app.state.service

    @app.post("/rank", response_model=RankResponse, dependencies=[Depends(access.key)], responses=_RANK_ERRORS)
    async def rank(body: RankRequest, request: Request) -> RankResponse | Response:
        """Re-rank 1..20 candidates for a user; each item carries the graph paths that explain it."""
        answer = await running(request).rank(body)
        return Response(answer, media_type="application/json") if isinstance(answer, bytes) else answer

    @app.post(
        "/interactions",
        response_model=InteractionResponse,
        dependencies=[Depends(access.write)],
        responses=_WRITE_ERRORS,
    )
    async def interactions(body: InteractionRequest, request: Request) -> InteractionResponse:
        """Append a user–item event to the graph's event log (once per event id); in the same transaction the
        user's version moves on, so no ranking cached before it is served again, on any replica."""
        return await running(request).record(body)

    @app.put(
        "/items/{item_id}",
        response_model=ItemResponse,
        dependencies=[Depends(access.write)],
        responses=_WRITE_ERRORS
        | {
            409: {"model": ErrorBody, "description": "the item is part of the dataset"},
            422: {
                "model": ErrorBody,
                "description": "invalid item id or body; an attribute label outside the dataset's schema, "
                f"or more than {MAX_NAMES_PER_LABEL} names for one label",
            },
            503: {"model": ErrorBody, "description": "the graph cannot take the item now; see Retry-After"},
        },
    )
    async def put_item(item_id: Id, body: ItemRequest, request: Request) -> ItemResponse:
        """Create or replace an item of the living catalogue (title and attributes): written to the graph at once,
        it can be a candidate right away, ranked and explained through its graph paths; loads keep it."""
        return await running(request).put_item(item_id, body)

    @app.post(
        "/admin/reload",
        response_model=ReloadResponse,
        dependencies=[Depends(access.admin)],
        responses={
            401: {"model": ErrorBody, "description": "missing or wrong X-API-Key"},
            403: {"model": ErrorBody, "description": "the server has no API key: admin endpoints are closed"},
            422: {"model": ErrorBody, "description": "the checkpoint or retriever cannot be served; the old stay"},
        },
    )
    async def reload(body: ReloadRequest, request: Request) -> ReloadResponse:
        """Swap in a new checkpoint (a `train bundle` output) without a restart. Requests keep being answered by
        the served models while the new ones load; each answer comes from exactly one of them."""
        service = running(request)
        served = service.models
        model_dir = Path(body.model_dir) if body.model_dir else served.model_dir
        retriever_dir = Path(body.retriever_dir) if body.retriever_dir else served.retriever_dir
        started = time.perf_counter()
        old, new = await service.reload(model_dir, retriever_dir)
        return ReloadResponse(
            version=new.version,
            previous_version=old.version,
            model_dir=str(new.model_dir),
            retriever_dir=None if new.retriever_dir is None else str(new.retriever_dir),
            seconds=round(time.perf_counter() - started, 3),
        )

    @app.get("/healthz", response_model=Health)
    async def healthz() -> Health:
        """The process is up."""
        return Health()

    @app.get("/readyz", response_model=Readiness)
    async def readyz(request: Request, key: str | None = Depends(API_KEY_HEADER)) -> Readiness:
        """Model loaded; the state of graph, cache and scorer (the service answers, degraded, without them).
        What is wrong is described only to callers with the API key."""
        return await running(request).readiness(detailed=access.has_key(key))

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        return Response(running(request).metrics.exposition(), media_type="text/plain; version=0.0.4")

    return app


_RANK_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorBody, "description": "missing or wrong X-API-Key"},
    413: {"model": ErrorBody, "description": "body over KGRANK_MAX_BODY_BYTES"},
    422: {"model": ErrorBody, "description": "invalid body; `item_ids` names unknown, duplicate or extra ids"},
}
_WRITE_ERRORS: dict[int | str, dict[str, object]] = {
    **_RANK_ERRORS,
    403: {"model": ErrorBody, "description": "writes are closed: the server has no API key and is not open"},
    409: {"model": ErrorBody, "description": "the event id was recorded before with a different body"},
    422: {"model": ErrorBody, "description": "invalid body; `item_ids` names an unknown item"},
    429: {"model": ErrorBody, "description": "too many writes from this caller; see Retry-After"},
    503: {"model": ErrorBody, "description": "the graph cannot take the interaction now; see Retry-After"},
}


def _error(status: int, message: str, item_ids: list[str] | None = None) -> JSONResponse:
    return JSONResponse(ErrorBody(error=message, item_ids=item_ids).model_dump(), status_code=status)


def _install_error_handlers(app: FastAPI, settings: Settings) -> None:
    @app.exception_handler(UnauthorizedError)
    async def unauthorized(request: Request, exc: UnauthorizedError) -> JSONResponse:
        response = _error(401, exc.message)
        response.headers["WWW-Authenticate"] = "APIKey"
        return response

    @app.exception_handler(WritesClosedError)
    async def closed(request: Request, exc: WritesClosedError) -> JSONResponse:
        return _error(403, exc.message)

    @app.exception_handler(RateLimitedError)
    async def limited(request: Request, exc: RateLimitedError) -> JSONResponse:
        response = _error(429, exc.message)
        response.headers["Retry-After"] = retry_after_header(exc.details["retry_after_s"])
        return response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # FastAPI's own refusals (an undecodable body, an unknown route, a wrong method) in kgrank's shape.
        message = exc.detail if isinstance(exc.detail, str) else "invalid request"
        if exc.status_code == 400:
            message = f"invalid body: {message[0].lower()}{message[1:]} (is it UTF-8 JSON?)"
        response = _error(exc.status_code, message)
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(part) for part in first.get("loc", ()))
        return _error(422, f"invalid {where or 'request'}: {first.get('msg', 'invalid value')}")

    @app.exception_handler(RequestError)
    async def bad_request(request: Request, exc: RequestError) -> JSONResponse:
        return _error(409 if isinstance(exc, ConflictError) else 422, exc.message, exc.details.get("item_ids"))

    @app.exception_handler(GraphError)
    async def graph_down(request: Request, exc: GraphError) -> JSONResponse:
        # What went wrong names servers and addresses: it goes to the log, the caller gets the gist.
        logger.warning("graph write failed: %s", exc.message)
        if isinstance(exc, GraphNotLoadedError):
            response = _error(503, "the knowledge graph holds no complete load of the served dataset; retry later")
        elif isinstance(exc, GraphUnavailableError):
            response = _error(503, "the knowledge graph is unavailable; retry later")
        else:
            return _error(500, "the knowledge graph refused the write (logged)")
        response.headers["Retry-After"] = retry_after_header(exc.details.get("retry_after_s", settings.retry_after_s))
        return response

    @app.exception_handler(ModelError)
    @app.exception_handler(ConfigError)
    async def unusable(request: Request, exc: KgrankError) -> JSONResponse:
        # Only an admin reload meets these at request time (at start they stop the server): the old models stay.
        return _error(422, exc.message)

    @app.exception_handler(KgrankError)
    async def failed(request: Request, exc: KgrankError) -> JSONResponse:
        logger.error("request failed: %s", exc.message)
        return _error(500, exc.message)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error")
        return _error(500, "internal error (logged)")


def _install_request_metrics(app: FastAPI) -> None:
    @app.middleware("http")
    async def observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        start = time.perf_counter()
        status = "500"  # an exception raised below ends as Starlette's 500, outside this middleware
        service = getattr(request.app.state, "service", None)
        if service is not None:
            service.metrics.in_flight.inc()
        try:
            response = await call_next(request)
            status = str(response.status_code)
            return response
        finally:
            if service is not None:
                service.metrics.in_flight.dec()
                elapsed = time.perf_counter() - start
                service.metrics.requests.labels(_endpoint_of(request), status).observe(elapsed)


def _endpoint_of(request: Request) -> str:
    """The route's path template (bounded label values); a request refused before routing (413, 408) is matched
    against the routes here, so it still counts for the endpoint it was sent to."""
    route = request.scope.get("route")
    if route is not None:
        return route.path
    for candidate in request.app.router.routes:
        match, _ = candidate.matches(request.scope)
        if match == Match.FULL:
            return candidate.path
    return "unmatched"
