"""Prometheus metrics of one app instance (its own registry, so several apps can live in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Seconds: a cache hit is ~1 ms, a CPU forward pass tens to hundreds of ms, a timeout up to seconds.
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Histogram(
            "kgrank_request_seconds",
            "HTTP request latency by endpoint and status code.",
            ["endpoint", "status"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.stages = Histogram(
            "kgrank_stage_seconds",
            "Latency of each /rank stage (graph_state, cache, graph, retriever, paths, prompt, score).",
            ["stage"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.cache = Counter(
            "kgrank_cache_lookups_total",
            "Ranking cache lookups by result (hit, miss, error).",
            ["result"],
            registry=self.registry,
        )
        self.degraded = Counter(
            "kgrank_degraded_total",
            "Answers given without a dependency, by the dependency.",
            ["reason"],
            registry=self.registry,
        )
        self.interactions = Counter(
            "kgrank_interactions_total",
            "POST /interactions accepted, by result (recorded, duplicate: a retried event id).",
            ["result"],
            registry=self.registry,
        )
        self.write_refusals = Counter(
            "kgrank_write_refusals_total",
            "Writes refused before reaching the graph, by reason (closed, rate_limited).",
            ["reason"],
            registry=self.registry,
        )
        self.scorer_errors = Counter(
            "kgrank_scorer_errors_total", "Scoring passes that failed or timed out.", registry=self.registry
        )
        self.batch_size = Histogram(
            "kgrank_scorer_batch_size",
            "Prompts per scorer call (micro-batching of concurrent requests).",
            buckets=(1, 2, 4, 8, 16, 32, 64),
            registry=self.registry,
        )

        self.in_flight = Gauge(
            "kgrank_requests_in_flight", "HTTP requests this process is handling now.", registry=self.registry
        )
        self.breaker_open = Gauge(
            "kgrank_breaker_open",
            "1 while a dependency (graph, scorer) is skipped after a failure, else 0.",
            ["dependency"],
            registry=self.registry,
        )
        self.model = Gauge(
            "kgrank_model_info",
            "1 for the model version this process serves (checkpoint, +retriever); changes on /admin/reload.",
            ["version"],
            registry=self.registry,
        )

    def serving(self, version: str) -> None:
        """The served model version: one series, moved on each reload."""
        self.model.clear()
        self.model.labels(version).set(1)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
