"""docs/metrics.md lists exactly the metric families a running app exports at /metrics, with their types and
labels: a metric added, renamed or relabelled in the code without the document fails here."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import ClientFactory, Served, candidates_for
from tests.conftest import ROOT

METRICS_DOC = ROOT / "docs" / "metrics.md"
# A row of the document's family table: | `name` | type | `label`, `label` (or: none) | meaning |
_FAMILY_ROW = re.compile(r"^\| `(kgrank_\w+)` \| (\w+) \| ([^|]*) \|", flags=re.MULTILINE)
_TYPE_LINE = re.compile(r"^# TYPE (\S+) (\S+)$", flags=re.MULTILINE)
_HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")
_CREATED = "_created"


@dataclass(frozen=True)
class Family:
    type: str
    labels: frozenset[str]


def documented_families() -> dict[str, Family]:
    families: dict[str, Family] = {}
    for name, kind, labels in _FAMILY_ROW.findall(METRICS_DOC.read_text()):
        assert name not in families, f"{name} is listed twice"
        families[name] = Family(kind, frozenset(re.findall(r"`(\w+)`", labels)))
    return families


def family_of(series: str, families: set[str]) -> str:
    """The exposition family (`# TYPE` name) a sample belongs to: its own name, or a histogram's."""
    if series in families:
        return series
    base, _, suffix = series.rpartition("_")
    assert f"_{suffix}" in _HISTOGRAM_SERIES and base in families, series
    return base


def test_the_document_lists_exactly_the_exported_families(served: Served, client_for: ClientFactory) -> None:
    client = client_for()  # no API key: writes are closed, so the write below is refused and counted
    request = {"user_id": served.dataset.user_id(3), "candidates": candidates_for(served, 3, 5), "top_k": 3}
    assert client.post("/rank", json=request).status_code == 200
    assert client.post("/rank", json=request).json()["cached"] is True
    interaction = {"user_id": served.dataset.user_id(3), "item_id": request["candidates"][0]}
    assert client.post("/interactions", json=interaction).status_code == 403
    exposition = client.get("/metrics").text
    # Every request before it has left; the scrape itself is in flight.
    assert "\nkgrank_requests_in_flight 1.0\n" in exposition

    documented = documented_families()
    exported = dict(_TYPE_LINE.findall(exposition))
    # prometheus_client's creation-time gauges beside each series: named after a documented family, not listed.
    created = {name for name, kind in exported.items() if name.endswith(_CREATED) and kind == "gauge"}
    for name in created:
        base = name.removesuffix(_CREATED)
        assert base in documented or f"{base}_total" in documented, name
    assert f"`{_CREATED}`" in METRICS_DOC.read_text()
    families = {name: kind for name, kind in exported.items() if name not in created}
    assert families == {name: family.type for name, family in documented.items()}

    labels: dict[str, set[str]] = {}
    for parsed in text_string_to_metric_families(exposition):
        for sample in parsed.samples:
            if sample.name not in created:
                family = family_of(sample.name, set(families))
                labels.setdefault(family, set()).update(set(sample.labels) - {"le"})
    # What the requests above counted: the label check below is not vacuous.
    assert set(labels) >= {
        "kgrank_request_seconds",
        "kgrank_stage_seconds",
        "kgrank_cache_lookups_total",
        "kgrank_write_refusals_total",
        "kgrank_scorer_errors_total",
        "kgrank_scorer_batch_size",
        "kgrank_requests_in_flight",
        "kgrank_breaker_open",
        "kgrank_model_info",
    }
    for family, seen in labels.items():
        assert seen == documented[family].labels, family


def request_count(exposition: str, endpoint: str, status: str) -> float:
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == "kgrank_request_seconds_count" and sample.labels == {
                "endpoint": endpoint,
                "status": status,
            }:
                return sample.value
    return 0.0


def test_refusals_before_routing_and_unexpected_exceptions_are_observed(
    served: Served, client_for: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = client_for(max_body_bytes=1024)
    too_big = client.post("/rank", content=b"{" + b" " * 4096 + b"}", headers={"content-type": "application/json"})
    assert too_big.status_code == 413

    async def broken(*_: object, **__: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(client.app.state.service, "rank", broken)
    failing = TestClient(client.app, raise_server_exceptions=False)
    request = {"user_id": served.dataset.user_id(3), "candidates": candidates_for(served, 3, 5)}
    assert failing.post("/rank", json=request).status_code == 500

    exposition = client.get("/metrics").text
    assert request_count(exposition, "/rank", "413") == 1
    assert request_count(exposition, "/rank", "500") == 1
