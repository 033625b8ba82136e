"""What the endpoints do: rank with cache, graph, preference module and scorer, each stage timed and guarded.

The ranking itself is the one pipeline evaluation and training use (services/ranker/pipeline.py); this
module runs its stages one by one around the graph, the cache and the scorer. With fusion, the
retriever scores the candidates from the user's live history (the same round trip returns it).

Degradation (docs/design.md): no graph → history from the processed dataset, no paths; no cache → uncached;
no LLM → the preference module's scores (fused like the LLM's when the ranking fuses), else the
retriever's, else the request's order. Each is named in `degraded`, counted in metrics, and a degraded
answer is never cached.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np

from services.core.errors import (
    ConfigError,
    ConflictError,
    GraphError,
    GraphNotLoadedError,
    GraphUnavailableError,
    KgrankError,
    ModelError,
    RequestError,
    ScorerError,
    UnknownItemsError,
)
from services.graph_loader.catalog import CatalogItem
from services.graph_loader.dataset import ProcessedDataset
from services.graph_loader.events import LiveEvent
from services.graph_loader.raw import clean_values
from services.graph_loader.sequences import UserSequences, user_sequences
from services.ranker.context import RANKING_PATHS, DatasetContext
from services.ranker.paths.models import PathRequest, RelationPath, UserPaths
from services.ranker.paths.render import path_cypher, path_text
from services.ranker.pipeline import RankedCandidate, Ranking, RankingInput, explain, ordered_by
from services.ranker.prompt import MAX_CANDIDATES, Prompt, ScoredPath
from services.ranker.ranking import RankingTask
from services.ranker.serving.cache import CacheUnavailableError, RankingCache, cache_key
from services.ranker.serving.contract import (
    MAX_NAMES_PER_LABEL,
    DegradedReason,
    ExplanationOut,
    InteractionRequest,
    InteractionResponse,
    ItemRequest,
    ItemResponse,
    ModelInfo,
    NodeElement,
    RankedBy,
    RankedItemOut,
    RankRequest,
    RankResponse,
    Readiness,
    RelationshipElement,
)
from services.ranker.serving.graph import GraphState, ServingGraph
from services.ranker.serving.metrics import Metrics
from services.ranker.serving.units import ServingModels

logger = logging.getLogger(__name__)
T = TypeVar("T")


class Breaker:
    """Open for `retry_after_s` after a failure; then one request tries again (and closes it on success)."""

    def __init__(self, retry_after_s: float) -> None:
        self._retry_after_s = retry_after_s
        self._open_until = 0.0

    def closed(self) -> bool:
        now = time.monotonic()
        if now < self._open_until:
            return False
        if self._open_until:
            self._open_until = now + self._retry_after_s  # let this request probe; the others keep skipping
        return True

    def failed(self) -> None:
        self._open_until = time.monotonic() + self._retry_after_s

    def retry_after_s(self) -> float:
        """How long until the next request may try again (the full wait when nothing has failed yet)."""
        return max(self._open_until - time.monotonic(), 0.0) or self._retry_after_s

    def succeeded(self) -> None:
        self._open_until = 0.0

    def is_open(self) -> bool:
        """Whether requests skip the dependency now (a probe after the wait closes it again on success)."""
        return time.monotonic() < self._open_until


@dataclass
class _Timer:
    """A request's stage timings: into its answer (`timings_ms`) and into the stage histogram."""

    metrics: Metrics
    timings_ms: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            seconds = time.perf_counter() - start
            self.timings_ms[name] = round(seconds * 1000, 3)
            self.metrics.stages.labels(name).observe(seconds)

    def finish(self) -> dict[str, float]:
        self.timings_ms["total"] = round((time.perf_counter() - self.started) * 1000, 3)
        return self.timings_ms


class RankingService:
    def __init__(
        self,
        *,
        dataset: ProcessedDataset,
        models: ServingModels,
        graph: ServingGraph,
        cache: RankingCache,
        scorer_name: str,
        metrics: Metrics,
        explanations_per_item: int,
        loader: Callable[[Path, Path | None], ServingModels] | None = None,
        retry_after_s: float = 5.0,
    ) -> None:
        self.dataset = dataset
        self.models = models  # replaced whole by `reload`; a request takes it once
        self._loader = loader
        self._reload_lock = asyncio.Lock()
        self._retiring: set[asyncio.Task[None]] = set()
        self.graph = graph
        self.cache = cache
        self.scorer_name = scorer_name
        self.metrics = metrics
        self.explanations_per_item = explanations_per_item
        self._items = {item.id: item for item in dataset.items}
        self._users = {user_id: idx for idx, user_id in enumerate(dataset.users, start=1)}
        self._offline: tuple[DatasetContext, UserSequences] | None = None  # built on the first graph outage
        # A dependency that just failed is skipped for a while: degraded answers come at once instead of
        # each request waiting out the same timeout.
        self._graph_breaker = Breaker(retry_after_s)
        self._scorer_breaker = Breaker(retry_after_s)
        for dependency, breaker in (("graph", self._graph_breaker), ("scorer", self._scorer_breaker)):
            metrics.breaker_open.labels(dependency).set_function(lambda breaker=breaker: float(breaker.is_open()))

    async def start(self) -> None:
        self.models.start(self.metrics.batch_size.observe)
        self.metrics.serving(self.models.version)

    async def close(self) -> None:
        await self.models.batcher.close()
        await self.cache.close()
        await self.graph.close()

    # -- POST /admin/reload --------------------------------------------------------------------------

    async def reload(self, model_dir: Path, retriever_dir: Path | None) -> tuple[ServingModels, ServingModels]:
        """Load a new checkpoint (and retriever) beside the served one, then swap it in: requests already
        running finish on the old unit, new ones take the new; nothing restarts. Returns (old, new)."""
        if self._loader is None:
            raise ConfigError("this service was built without a model loader: it cannot reload")
        async with self._reload_lock:
            old = self.models
            new = await asyncio.to_thread(self._loader, model_dir, retriever_dir)
            old_length = 0 if old.retriever is None else old.retriever.max_len
            new_length = 0 if new.retriever is None else new.retriever.max_len
            if new_length != old_length:
                await new.batcher.close()
                raise ModelError(
                    f"the new retriever reads {new_length} items of history, the served graph fetches {old_length}: "
                    "restart the API to change that"
                )
            new.start(self.metrics.batch_size.observe)
            self.models = new
            self.metrics.serving(new.version)
            task = asyncio.get_running_loop().create_task(old.retire())
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
        logger.info("serving %s (was %s)", new.version, old.version)
        return old, new

    # -- POST /rank ----------------------------------------------------------------------------------

    async def rank(self, request: RankRequest) -> RankResponse | bytes:
        """A fresh answer, or a cached one as finished JSON bytes (the hot path skips re-validation). Without
        candidates the retriever picks them from the user's live history (seen items left out)."""
        models = self.models  # one unit for the whole request, whatever a reload does meanwhile
        models.requests += 1
        try:
            return await self._rank(request, models)
        finally:
            models.requests -= 1

    async def _rank(self, request: RankRequest, models: ServingModels) -> RankResponse | bytes:
        if request.candidates is None:
            if models.retriever is None:
                raise RequestError(
                    "no candidates given, and this server has no retriever to pick them (start it with --retriever, "
                    "KGRANK_RETRIEVER_DIR): send candidates"
                )
        else:
            self._check_candidates(request.candidates)
        timer = _Timer(self.metrics)
        degraded: list[DegradedReason] = []
        state = await self._graph_state(request.user_id, timer, degraded)
        key = None
        if state is not None:  # without the durable user version no cached answer can be trusted
            key = cache_key(request.user_id, state.user_version, self._request_digest(request, state, models))
            with timer.stage("cache"):
                try:
                    payload = await self.cache.lookup(key)
                except CacheUnavailableError as e:
                    logger.warning("cache lookup failed: %s", e.message)
                    self._degrade(degraded, "cache")
                    key = payload = None
            self.metrics.cache.labels("hit" if payload else ("error" if key is None else "miss")).inc()
            if payload is not None:
                return _cached_answer(payload, degraded, timer.finish())

        original = None
        if request.candidates is None:
            retrieved = await self._retrieve(request, models, timer, degraded, graph_up=state is not None)
            original, request = request, retrieved
        paths = await self._fetch(request, models, timer, degraded, graph_up=state is not None)
        item, chosen, prompt = await asyncio.to_thread(self._prepare, request, models, paths, timer)
        ranking, ranked_by = await self._score(models, item, chosen, prompt, timer, degraded)
        ranked = explain(paths, ranking, per_item=self.explanations_per_item if request.explain else 0)
        response = RankResponse(
            user_id=request.user_id,
            known_user=paths.known_user,
            cold_start=not paths.history,
            history_length=len(paths.history),
            user_version=None if state is None else state.user_version,
            candidates_from="request" if original is None else "retriever",
            ranking=[self._item_out(paths, item) for item in ranked[: request.top_k]],
            model=self._model_info(models, ranked_by, state),
            prompt_tokens=prompt.tokens,
            cached=False,
            degraded=degraded,
            timings_ms=timer.finish(),
        )
        if key is not None and not degraded:
            try:
                await self.cache.store(key, response.model_dump_json(exclude=_PER_ANSWER).encode())
            except CacheUnavailableError as e:
                logger.warning("cache store failed: %s", e.message)
        return response

    async def _retrieve(
        self,
        request: RankRequest,
        models: ServingModels,
        timer: _Timer,
        degraded: list[DegradedReason],
        *,
        graph_up: bool,
    ) -> RankRequest:
        """The request with the retriever's top candidates for the user's live history (every item the user
        has interacted with is left out; the dataset's history when the graph is out)."""
        retriever = models.retriever
        assert retriever is not None  # checked before the cache
        with timer.stage("retrieve"):
            seen = None
            if graph_up:
                without = "retrieving from the dataset's history"
                seen = await self._ask_graph(lambda: self.graph.user_items(request.user_id), without)
            if seen is None:
                self._degrade(degraded, "graph")
                seen = self._offline_history(request.user_id)
            candidates = await asyncio.to_thread(retriever.top, seen, seen=set(seen), count=MAX_CANDIDATES)
        if not candidates:
            raise RequestError(f"user {request.user_id!r} has interacted with every item: nothing left to recommend")
        return request.model_copy(update={"candidates": candidates})

    async def _graph_state(self, user_id: str, timer: _Timer, degraded: list[DegradedReason]) -> GraphState | None:
        """The graph's load and the user's durable version; None (and "graph" degraded) when they are unknown."""
        with timer.stage("graph_state"):
            state = await self._ask_graph(lambda: self.graph.state(user_id), "ranking without it")
        if state is None:
            self._degrade(degraded, "graph")
        return state

    async def _ask_graph(self, ask: Callable[[], Awaitable[T]], without: str) -> T | None:
        """A graph read behind the breaker: None when the graph is known to be down, fails, or holds no complete
        load (then `without` says in the log what the request does instead). A graph known to be down is not
        asked; an unknown candidate is the caller's error, not the graph's."""
        if not self._graph_breaker.closed():
            return None
        try:
            answer = await ask()
        except UnknownItemsError:
            raise
        except GraphNotLoadedError as e:  # reachable, but no complete load (a load is running)
            logger.warning("graph not loaded, %s: %s", without, e.message)
            self._graph_breaker.succeeded()
            return None
        except GraphError as e:
            logger.warning("graph unavailable, %s: %s", without, e.message)
            self._graph_breaker.failed()
            return None
        self._graph_breaker.succeeded()
        return answer

    async def _write_graph(self, write: Callable[[], Awaitable[T]]) -> T:
        """A graph write behind the breaker: refused at once (503 with Retry-After) while the graph is known to be
        down; a write that finds it down opens the breaker."""
        if not self._graph_breaker.closed():
            raise GraphUnavailableError("graph known to be down", retry_after_s=self._graph_breaker.retry_after_s())
        try:
            result = await write()
        except UnknownItemsError:
            self._graph_breaker.succeeded()  # the graph answered
            raise
        except GraphUnavailableError as e:
            self._graph_breaker.failed()
            e.details["retry_after_s"] = self._graph_breaker.retry_after_s()
            raise
        self._graph_breaker.succeeded()
        return result

    def _check_candidates(self, candidates: list[str]) -> None:
        if len(candidates) > MAX_CANDIDATES:
            extra = candidates[MAX_CANDIDATES:]
            raise RequestError(f"at most {MAX_CANDIDATES} candidates; these are beyond: {extra}", item_ids=extra)
        duplicates = sorted({c for c in candidates if candidates.count(c) > 1})
        if duplicates:
            raise RequestError(f"duplicate candidate ids: {duplicates}", item_ids=duplicates)
        # Ids the dataset lacks may be living-catalogue items: the graph's paths query checks those.

    def _request_digest(self, request: RankRequest, state: GraphState, models: ServingModels) -> str:
        """Everything a cached answer depends on besides the user's version."""
        key = [models.version, state.load_id, request.candidates, request.top_k, request.explain]
        return hashlib.sha256(json.dumps(key).encode()).hexdigest()[:32]

    async def _fetch(
        self,
        request: RankRequest,
        models: ServingModels,
        timer: _Timer,
        degraded: list[DegradedReason],
        *,
        graph_up: bool,
    ) -> UserPaths:
        with timer.stage("graph"):
            paths = None
            if graph_up:
                path_request = PathRequest(user_id=request.user_id, candidates=tuple(request.candidates or ()))
                paths = await self._ask_graph(lambda: self.graph.fetch(path_request), "ranking without paths")
            if paths is None:
                self._degrade(degraded, "graph")
                paths = self._offline_paths(request, models)
        return paths

    def _prepare(
        self, request: RankRequest, models: ServingModels, paths: UserPaths, timer: _Timer
    ) -> tuple[RankingInput, list[ScoredPath], Prompt]:
        """CPU work between the graph and the scorer (run in a worker thread): the pipeline's first stages."""
        retriever_scores = None
        if models.retriever is not None:
            with timer.stage("retriever"):
                retriever_scores = models.retriever.scores(paths.sequence, request.candidates)
        item = RankingInput(self._users.get(request.user_id, 0), paths, retriever_scores)
        with timer.stage("paths"):
            (chosen,) = models.pipeline.choose([item])
        with timer.stage("prompt"):
            (prompt,) = models.pipeline.prompts([item], [chosen])
        return item, chosen, prompt

    async def _score(
        self,
        models: ServingModels,
        item: RankingInput,
        chosen: list[ScoredPath],
        prompt: Prompt,
        timer: _Timer,
        degraded: list[DegradedReason],
    ) -> tuple[Ranking, RankedBy]:
        """The LLM pass through the batcher, then fusion and order; the fallbacks when the LLM is out."""
        count = len(item.paths.candidates)
        with timer.stage("score"):
            ranking = None
            if self._scorer_breaker.closed():
                try:
                    scores = await models.batcher.score(prompt.text, count)
                    ranking, ranked_by = models.pipeline.finish(item, chosen, prompt, scores), "llm"
                    self._scorer_breaker.succeeded()
                except ScorerError as e:
                    logger.warning("scorer unavailable, falling back: %s", e.message)
                    self.metrics.scorer_errors.inc()
                    self._scorer_breaker.failed()
            if ranking is None:
                self._degrade(degraded, "scorer")
                ranking, ranked_by = self._fallback(models, item, chosen, prompt)
        return ranking, ranked_by

    def _fallback(
        self, models: ServingModels, item: RankingInput, chosen: list[ScoredPath], prompt: Prompt
    ) -> tuple[Ranking, RankedBy]:
        """The preference module (fused when it can be), else the retriever's order, else the request's."""
        if models.fallback is not None:
            (scores,) = models.fallback.model_scores([item], None)
            return models.fallback.finish(item, chosen, prompt, scores), "preference module"
        if item.retriever_scores is not None:
            scores = item.retriever_scores
            return ordered_by(scores, chosen=chosen, prompt=prompt, retriever_scores=scores), "retriever"
        return ordered_by(np.zeros(len(item.paths.candidates)), chosen=chosen, prompt=prompt), "request order"

    def _offline_paths(self, request: RankRequest, models: ServingModels) -> UserPaths:
        """History from the processed dataset (live interactions unknown) and no paths."""
        unknown = [c for c in request.candidates or () if c not in self._items]
        if unknown:
            raise UnknownItemsError(
                f"unknown item ids: {unknown} (items created through the API cannot be checked while the graph "
                "is unavailable)",
                item_ids=unknown,
            )
        context, sequences = self._offline_data()
        user = self._users.get(request.user_id)
        task = RankingTask(
            user=user or 0,
            user_id=request.user_id,
            history=sequences.items[user - 1] if user else np.zeros(0, dtype=np.int64),
            candidates=np.array([self._items[c].idx for c in request.candidates], dtype=np.int64),
        )
        (paths,) = context.fetch([task])
        length = 0 if models.retriever is None else models.retriever.max_len
        sequence = tuple(self.dataset.item(int(i)).id for i in task.history[-length:].tolist()) if length else ()
        return paths.model_copy(update={"known_user": user is not None, "sequence": sequence})

    def _offline_history(self, user_id: str) -> list[str]:
        """Every item of the user in the processed dataset, oldest first (live interactions unknown)."""
        _, sequences = self._offline_data()
        user = self._users.get(user_id)
        return [self.dataset.item(int(i)).id for i in sequences.items[user - 1].tolist()] if user else []

    def _offline_data(self) -> tuple[DatasetContext, UserSequences]:
        if self._offline is None:  # built on the first graph outage
            history_length = RANKING_PATHS.history_length  # as the graph would return it
            self._offline = (DatasetContext(self.dataset, history_length=history_length), user_sequences(self.dataset))
        return self._offline

    def _item_out(self, paths: UserPaths, item: RankedCandidate) -> RankedItemOut:
        return RankedItemOut(
            item_id=item.item.item_id,
            title=item.item.title,
            score=item.score,
            ranker_score=item.ranker_score,
            retriever_score=item.retriever_score,
            rank=item.rank,
            explanations=[
                ExplanationOut(
                    text=path_text(paths, explanation.path),
                    path=_elements(explanation.path),
                    cypher=path_cypher(explanation.path, dataset=self.dataset.name, schema=self.dataset.schema),
                    score=explanation.score,
                    shown_to_model=explanation.shown_to_model,
                )
                for explanation in item.explanations
            ],
        )

    def _model_info(self, models: ServingModels, ranked_by: RankedBy, state: GraphState | None) -> ModelInfo:
        metadata, retriever = models.metadata, models.retriever
        return ModelInfo(
            version=models.version,
            dataset=metadata.dataset,
            data_hash=metadata.data_hash,
            graph_version=None if state is None else state.data_hash,
            base_model=metadata.base_model,
            path_strategy=metadata.path_strategy,
            scorer=self.scorer_name,
            ranked_by=ranked_by,
            fusion_weight=None if models.pipeline.fusion is None else models.pipeline.fusion.weight,
            retriever=None if retriever is None else f"{retriever.name} {retriever.version}",
        )

    def _degrade(self, degraded: list[DegradedReason], reason: DegradedReason) -> None:
        if reason not in degraded:
            degraded.append(reason)
            self.metrics.degraded.labels(reason).inc()

    # -- POST /interactions --------------------------------------------------------------------------

    async def record(self, request: InteractionRequest) -> InteractionResponse:
        """Append the event to the graph's log; the user's version moves in the same transaction, so no
        cached ranking from before it can be served again. A known event id is a retry: nothing changes."""
        now = time.time()
        event = LiveEvent(
            event_id=request.event_id or uuid.uuid4().hex,
            user_id=request.user_id,
            item_id=request.item_id,
            rating=request.rating,
            timestamp=request.timestamp if request.timestamp is not None else int(now),
            recorded_at=now,
        )
        try:
            recorded = await self._write_graph(lambda: self.graph.record(event))
        except UnknownItemsError as e:
            if request.item_id in self._items:  # in the dataset, not in the graph: the load is incomplete
                raise GraphNotLoadedError(f"item {request.item_id!r} is not in the graph; is a load running?") from e
            raise
        if not recorded.created and not recorded.event.same_as(event, compare_timestamp=request.timestamp is not None):
            raise ConflictError(
                f"event id {event.event_id!r} was recorded before with a different user, item, rating or timestamp"
            )
        self.metrics.interactions.labels("duplicate" if not recorded.created else "recorded").inc()
        stored = recorded.event
        return InteractionResponse(
            event_id=stored.event_id,
            user_id=stored.user_id,
            item_id=stored.item_id,
            rating=stored.rating,
            timestamp=stored.timestamp,
            duplicate=not recorded.created,
            user_version=recorded.user_version,
        )

    # -- PUT /items/{item_id} ------------------------------------------------------------------------

    async def put_item(self, item_id: str, request: ItemRequest) -> ItemResponse:
        """Create or replace a living-catalogue item: ranked and explained through its graph paths at once."""
        if item_id in self._items:
            raise ConflictError(
                f"item {item_id!r} is part of the served dataset: change it in the data and prepare it again"
            )
        schema = self.dataset.schema.attributes
        unknown = sorted(set(request.attributes) - set(schema))
        if unknown:
            raise RequestError(f"attribute labels {unknown} are not in this dataset's schema: use {sorted(schema)}")
        crowded = sorted(label for label, names in request.attributes.items() if len(names) > MAX_NAMES_PER_LABEL)
        if crowded:
            raise RequestError(f"more than {MAX_NAMES_PER_LABEL} names for {crowded}")
        cleaned = {label: clean_values(names) for label, names in request.attributes.items()}
        item = CatalogItem(
            item_id=item_id,
            title=" ".join(request.title.split()),
            attributes={label: names for label, names in cleaned.items() if names},
            recorded_at=time.time(),
        )
        created = await self._write_graph(lambda: self.graph.put_item(item))
        return ItemResponse(item_id=item_id, title=item.title, attributes=item.attributes, created=created)

    # -- GET /readyz ---------------------------------------------------------------------------------

    async def readiness(self, *, detailed: bool) -> Readiness:
        """Each dependency's state; what is wrong in words (addresses included) only when `detailed`."""
        checks: dict[str, str] = {}
        degraded: list[DegradedReason] = []

        async def check(name: DegradedReason, probe: Callable[[], Awaitable[object]], errors: type[Exception]) -> None:
            try:
                await probe()
                checks[name] = "ok"
            except errors as e:
                checks[name] = e.message if detailed and isinstance(e, KgrankError) else "unavailable"
                degraded.append(name)

        await check("graph", lambda: self.graph.state(None), GraphError)
        await check("cache", self.cache.ping, CacheUnavailableError)
        health = self.models.scorer_health
        if health is not None:
            await check("scorer", health, ScorerError)
        else:
            checks["scorer"] = "ok"
        return Readiness(ready=True, checks=checks, degraded=degraded)


_PER_ANSWER = {"cached", "degraded", "timings_ms"}


def _cached_answer(payload: bytes, degraded: list[DegradedReason], timings_ms: dict[str, float]) -> bytes:
    """The stored answer (a JSON object without the per-answer fields) with those fields put first."""
    head = json.dumps({"cached": True, "degraded": degraded, "timings_ms": timings_ms}).encode()
    return head[:-1] + b", " + payload[1:]


def _elements(path: RelationPath) -> list[NodeElement | RelationshipElement]:
    elements: list[NodeElement | RelationshipElement] = []
    for position, node in enumerate(path.nodes):
        elements.append(NodeElement(label=node.label, key=node.key, title=node.title))
        if position < path.length:
            hop = path.hops[position]
            elements.append(RelationshipElement(type=hop.type, direction="forward" if hop.forward else "backward"))
    return elements
