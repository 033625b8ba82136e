"""The FastAPI app: routes, API key, error bodies and request metrics. `build_service` wires the parts."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.api.auth import (
    API_KEY_HEADER,
    Access,
    RateLimitedError,
    UnauthorizedError,
    WritesClosedError,
    retry_after_header,
)
from services.api.batching import MicroBatcher
from services.api.cache import MemoryCache, RankingCache, RedisCache
from services.api.graph import open_serving_graph
from services.api.limits import BodySizeLimit
from services.api.metrics import Metrics
from services.api.models import (
    ErrorBody,
    Health,
    InteractionRequest,
    InteractionResponse,
    RankRequest,
    RankResponse,
    Readiness,
)
from services.api.service import RankingService
from services.core.errors import (
    ConfigError,
    EventConflictError,
    GraphError,
    GraphNotLoadedError,
    GraphUnavailableError,
    KgrankError,
    ModelError,
    RequestError,
)
from services.core.settings import Settings
from services.graph_loader.dataset import ProcessedDataset
from services.ranker.context import RANKING_PATHS
from services.ranker.llm.metadata import RankerMetadata
from services.ranker.llm.scorer import TransformersScorer, load_tokenizer
from services.ranker.llm.vllm import AsyncVLLMScorer
from services.ranker.pipeline import RankingPipeline
from services.ranker.retriever.live import LiveRetriever

logger = logging.getLogger(__name__)
VERSION = "0.1.0"


def build_service(settings: Settings) -> RankingService:
    """Load the dataset and checkpoint named by the settings and connect (lazily) to graph, cache and scorer."""
    if settings.dataset_dir is None or settings.model_dir is None:
        raise ConfigError("serving needs KGRANK_DATASET_DIR (processed dataset) and KGRANK_MODEL_DIR (checkpoint)")
    dataset = ProcessedDataset.load(settings.dataset_dir)
    metadata = RankerMetadata.load(settings.model_dir)
    if (metadata.dataset, metadata.data_hash) != (dataset.name, dataset.manifest.data_hash):
        raise ModelError(
            f"{settings.model_dir} was trained on {metadata.dataset} {metadata.data_hash[:12]}, but "
            f"{settings.dataset_dir} holds {dataset.name} {dataset.manifest.data_hash[:12]}: user and item ids "
            "would not match; serve the data the checkpoint was trained on"
        )
    fused = settings.fusion and metadata.fusion is not None and metadata.fusion.weight > 0
    if fused and settings.retriever_dir is None:
        raise ConfigError(
            f"{settings.model_dir} fuses its scores with the retriever's (weight {metadata.fusion.weight:.2f}, "  # type: ignore[union-attr]
            "chosen on val): give the retriever run with --retriever (KGRANK_RETRIEVER_DIR), or serve it unfused "
            "with --no-fusion (KGRANK_FUSION=false)"
        )
    # A retriever given is loaded (and checked) even when nothing fuses: it sets the history length for
    # paths and is the fallback order when the scorer fails.
    retriever = None if settings.retriever_dir is None else LiveRetriever(settings.retriever_dir, dataset)
    if settings.scorer == "vllm":
        remote = AsyncVLLMScorer(
            settings.vllm_url, metadata, model=settings.vllm_model, timeout_s=settings.scorer_timeout_s, retries=1
        )
        # HTTP calls wait on the server, not on this CPU: several batches may be in flight.
        batcher = MicroBatcher(remote.score, workers=4, on_close=remote.close, **_batching(settings))
        health = remote.ping
        tokenizer = load_tokenizer(settings.model_dir)
    else:
        local = TransformersScorer(settings.model_dir, batch_size=settings.batch_size)
        # One forward pass at a time, off the event loop; torch already uses every core.
        batcher = MicroBatcher(local.score, workers=1, **_batching(settings))
        health = None
        tokenizer = local.tokenizer
    # The scorer is the batcher (serving sends prompts through it); the pipeline does every other stage.
    pipeline = RankingPipeline.from_checkpoint(settings.model_dir, scorer=None, tokenizer=tokenizer, fused=fused)
    # The paths training and evaluation exported (the prompt shows the last `history_items` of them).
    path_config = RANKING_PATHS.model_copy(update={"sequence_length": 0 if retriever is None else retriever.max_len})
    cache: RankingCache = (
        RedisCache(settings.redis_url, ttl_s=settings.cache_ttl_s, timeout_s=settings.redis_timeout_s)
        if settings.redis_url
        else MemoryCache(entries=settings.cache_entries, ttl_s=settings.cache_ttl_s)
    )
    return RankingService(
        dataset=dataset,
        pipeline=pipeline,
        metadata=metadata,
        graph=open_serving_graph(settings, dataset, settings.dataset_dir, path_config),
        cache=cache,
        batcher=batcher,
        scorer_name=settings.scorer,
        metrics=Metrics(),
        explanations_per_item=settings.explanations_per_item,
        scorer_health=health,
        retry_after_s=settings.retry_after_s,
        retriever=retriever,
    )


def _batching(settings: Settings) -> dict[str, Any]:
    return {
        "max_batch": settings.batch_size,
        "wait_s": settings.batch_wait_ms / 1000,
        "timeout_s": settings.scorer_timeout_s,
    }


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
    _install_request_metrics(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes, read_timeout_s=settings.request_read_timeout_s)
    access = Access(settings, lambda: getattr(getattr(app.state, "service", None), "metrics", None))
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
        return _error(409 if isinstance(exc, EventConflictError) else 422, exc.message, exc.details.get("item_ids"))

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
        response = await call_next(request)
        route = request.scope.get("route")
        endpoint = getattr(route, "path", "unmatched")
        service = getattr(request.app.state, "service", None)
        if service is not None:
            service.metrics.requests.labels(endpoint, str(response.status_code)).observe(time.perf_counter() - start)
        return response
