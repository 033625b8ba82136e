"""The observability profile, checked offline: Prometheus's config, Grafana's provisioning and dashboard, and the
compose services that run them. Every PromQL query (the dashboard's and docs/metrics.md's) may name only series the
app registers, so a renamed metric breaks this test rather than an empty panel."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from services.api.app import create_app
from services.core.settings import Settings
from services.ranker.serving.metrics import Metrics
from tests.conftest import ROOT
from tests.deploy.test_compose import compose

PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "kgrank.json"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD_PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "kgrank.yml"
METRICS_DOC = ROOT / "docs" / "metrics.md"
PROFILE = "observability"
OBSERVABILITY_SERVICES = {"prometheus", "grafana"}

# Series Prometheus writes itself for every target it scrapes; the dashboard may use them next to the app's.
PROMETHEUS_OWN = {"up"}
GRAFANA_BUILTIN_VARIABLES = {"__rate_interval", "__interval", "__range"}
PANEL_TYPES = {"stat", "timeseries"}
GRID_COLUMNS = 24

# The series each family type is exposed as (a type missing here fails the tests until it is added).
_SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_LABEL_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and", "or", "unless"}


def exported_series() -> dict[str, str]:
    """Every series name the app's registry exposes (a histogram's `_bucket`, `_sum`, `_count`), mapped to its
    family, taken from the metrics the app really registers."""
    series: dict[str, str] = {}
    for family in Metrics().registry.collect():
        for suffix in _SUFFIXES[family.type]:
            series[family.name + suffix] = family.name
    return series


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers left once strings, label matchers, ranges and
    label lists are cut out, that are neither keywords nor called like functions."""
    stripped = _STRING.sub('""', expr)
    stripped = _LABEL_MATCHERS.sub(" ", stripped)
    stripped = _RANGE.sub(" ", stripped)
    stripped = _LABEL_LIST.sub(" ", stripped)
    names: set[str] = set()
    for match in _IDENTIFIER.finditer(stripped):
        called = stripped[match.end() :].lstrip().startswith("(")
        # The tail of a number (`1e3`, `0.5e-2`) or of a duration (`offset 1h`), not a name.
        previous = stripped[match.start() - 1 : match.start()]
        in_number = previous.isdigit() or previous == "."
        if not called and not in_number and match.group() not in _KEYWORDS:
            names.add(match.group())
    return names


def balanced(expr: str) -> bool:
    """Brackets of every kind close in order, outside strings."""
    closing = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    for char in _STRING.sub('""', expr):
        if char in "([{":
            stack.append(char)
        elif char in closing and (not stack or stack.pop() != closing[char]):
            return False
    return not stack


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


@pytest.fixture(scope="module")
def prometheus() -> dict[str, Any]:
    return yaml.safe_load(PROMETHEUS_CONFIG.read_text())


@pytest.fixture(scope="module")
def datasource() -> dict[str, Any]:
    provisioning = yaml.safe_load(DATASOURCES.read_text())
    assert provisioning["apiVersion"] == 1
    (only,) = provisioning["datasources"]
    return only


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    result = compose("--profile", PROFILE, "config")
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)["services"]


def queries(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression of the dashboard: its panels' targets, and the series selector of each variable's
    Grafana query `label_values(SELECTOR, LABEL)`."""
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    for variable in dashboard["templating"]["list"]:
        query = re.fullmatch(r"label_values\((.+),\s*\w+\)", variable["query"])
        assert query, variable["query"]
        exprs.append(query.group(1))
    return exprs


def promql_blocks(markdown: str) -> list[str]:
    """The ```promql blocks of a markdown text, comment lines dropped."""
    blocks = re.findall(r"^```promql\n(.*?)^```", markdown, flags=re.MULTILINE | re.DOTALL)
    return ["\n".join(line for line in block.splitlines() if not line.lstrip().startswith("#")) for block in blocks]


def bind_mounts(service: dict[str, Any]) -> dict[Path, tuple[str, str]]:
    """A service's mounts of host paths: source → (target in the container, mode)."""
    mounts = {}
    for volume in service["volumes"]:
        source, target, mode = volume.rsplit(":", 2)
        if source.startswith("/"):
            mounts[Path(source)] = (target, mode)
    return mounts


def started(services: dict[str, Any], profiles: set[str]) -> set[str]:
    """The services `docker compose [--profile P …] up` starts: those without profiles and those of an active one."""
    return {
        name for name, service in services.items() if not service.get("profiles") or profiles & set(service["profiles"])
    }


# -- the PromQL name parser the other checks rely on ------------------------------------------------------------


def test_the_name_parser_finds_every_selected_series_and_nothing_else() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, stage) (rate(a_bucket{stage="score", x=~"b|c"}[$__rate_interval])))'
        " / ignoring (reason) group_left sum(rate(d_total[5m] offset 1h)) or vector(0) and on (job) up"
        ' + count_over_time(e:rule{job="f_total"}[1h:5m]) * 1e3'
    )
    assert metric_names(expr) == {"a_bucket", "d_total", "up", "e:rule"}
    assert metric_names("sum(rate(kgrank_requests_total[5m]))") == {"kgrank_requests_total"}
    assert balanced(expr) and not balanced("sum(rate(x[5m])") and not balanced('sum(rate(x{a="b"]))')


def test_the_series_list_follows_the_registry() -> None:
    series = exported_series()
    assert series["kgrank_request_seconds_bucket"] == "kgrank_request_seconds"
    assert series["kgrank_cache_lookups_total"] == "kgrank_cache_lookups"
    assert "kgrank_cache_lookups_total_total" not in series and "kgrank_request_seconds" not in series
    assert series["kgrank_breaker_open"] == "kgrank_breaker_open"  # a gauge is its own series


# -- the dashboard ------------------------------------------------------------------------------------------------


def test_the_dashboard_has_grafanas_shape(dashboard: dict[str, Any], datasource: dict[str, Any]) -> None:
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", dashboard["uid"]) and dashboard["title"]
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["panels"]
    source = {"type": "prometheus", "uid": datasource["uid"]}
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert all(isinstance(panel_id, int) for panel_id in ids) and len(set(ids)) == len(ids)
    for panel in dashboard["panels"]:
        assert panel["type"] in PANEL_TYPES and panel["title"], panel
        grid = panel["gridPos"]
        assert all(isinstance(grid[key], int) for key in ("h", "w", "x", "y")), panel["title"]
        assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] >= 0 and grid["y"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= GRID_COLUMNS, panel["title"]
        assert panel["datasource"] == source, panel["title"]
        assert panel["targets"], panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(set(ref_ids)) == len(ref_ids), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == source and target["expr"].strip(), panel["title"]
    for variable in dashboard["templating"]["list"]:
        assert variable["datasource"] == source and variable["name"], variable


def test_no_two_panels_overlap(dashboard: dict[str, Any]) -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = panel["title"]


def test_every_query_selects_only_series_the_app_exports(dashboard: dict[str, Any]) -> None:
    known = set(exported_series()) | PROMETHEUS_OWN
    for expr in queries(dashboard):
        names = metric_names(expr)
        assert names, expr
        assert names <= known, f"{sorted(names - known)} in {expr}"
        assert balanced(expr), expr


def test_prometheus_own_series_are_read_for_jobs_it_scrapes(dashboard: dict[str, Any], prometheus: dict) -> None:
    jobs = {job["job_name"] for job in prometheus["scrape_configs"]}
    for expr in queries(dashboard):
        if "up" in metric_names(expr):
            selected = re.findall(r'\bup\{job="([^"]+)"\}', expr)
            assert selected and set(selected) <= jobs, expr


def test_the_dashboard_shows_every_family_the_app_exports(dashboard: dict[str, Any]) -> None:
    series = exported_series()
    shown = {series[name] for expr in queries(dashboard) for name in metric_names(expr) if name in series}
    assert shown == set(series.values())


def test_every_variable_used_is_defined_and_every_defined_one_used(dashboard: dict[str, Any]) -> None:
    defined = {variable["name"] for variable in dashboard["templating"]["list"]}
    used = {name for expr in queries(dashboard) for name in re.findall(r"\$(\w+)", expr)}
    assert used - GRAFANA_BUILTIN_VARIABLES == defined


# -- Grafana's provisioning and its compose service ----------------------------------------------------------------


def test_the_datasource_is_the_compose_prometheus(datasource: dict[str, Any], prometheus: dict, services: dict) -> None:
    assert datasource["type"] == "prometheus" and datasource["access"] == "proxy"
    url = urlsplit(datasource["url"])
    assert url.hostname == "prometheus" and url.hostname in services
    assert any(port.endswith(f":{url.port}/tcp") for port in services["prometheus"]["ports"])
    # $__rate_interval is at least four times this: it must be the real scrape interval.
    assert datasource["jsonData"]["timeInterval"] == prometheus["global"]["scrape_interval"]


def test_grafana_loads_the_dashboards_it_mounts(services: dict[str, Any]) -> None:
    providers = yaml.safe_load(DASHBOARD_PROVIDERS.read_text())
    assert providers["apiVersion"] == 1
    (provider,) = providers["providers"]
    grafana = services["grafana"]
    mounts = bind_mounts(grafana)
    assert mounts[DASHBOARD.parent] == (provider["options"]["path"], "ro")
    assert mounts[DATASOURCES.parents[1]] == ("/etc/grafana/provisioning", "ro")
    assert provider["type"] == "file" and provider["allowUiUpdates"] is False
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{provider['options']['path']}/{DASHBOARD.name}"


def test_grafana_is_read_only_without_a_default_password(services: dict[str, Any]) -> None:
    """No password can be required (compose interpolates every profile's services, so a required variable would
    break plain `up`) and none may be defaulted: anonymous viewers only, and no way to log in."""
    environment = services["grafana"]["environment"]
    assert environment["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert environment["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert environment["GF_AUTH_DISABLE_LOGIN_FORM"] == "true" and environment["GF_AUTH_BASIC_ENABLED"] == "false"
    assert not any("PASSWORD" in name for name in environment)


# -- Prometheus's config ----------------------------------------------------------------------------------------


def test_prometheus_scrapes_each_api_replica_where_the_app_serves_metrics(prometheus: dict, services: dict) -> None:
    (job,) = [job for job in prometheus["scrape_configs"] if job["job_name"] == "kgrank-api"]
    (discovery,) = job["dns_sd_configs"]
    # Every replica's own address from Docker's DNS, not the proxy (which would spread scrapes over replicas).
    assert discovery["names"] == ["api"] and discovery["type"] == "A"
    command = services["api"]["command"]
    assert discovery["port"] == int(command[command.index("--port") + 1])
    routes = {getattr(route, "path", None) for route in create_app(Settings(neo4j_uri=None)).routes}
    assert job["metrics_path"] in routes


def test_prometheus_scrapes_vllm_where_the_api_calls_it(prometheus: dict, services: dict) -> None:
    (job,) = [job for job in prometheus["scrape_configs"] if job["job_name"] == "vllm"]
    (discovery,) = job["dns_sd_configs"]
    scorer = urlsplit(services["api"]["environment"]["KGRANK_VLLM_URL"])
    assert discovery["names"] == [scorer.hostname] and discovery["port"] == scorer.port


def test_every_scrape_target_is_a_compose_service(prometheus: dict, services: dict) -> None:
    jobs = [job["job_name"] for job in prometheus["scrape_configs"]]
    assert len(set(jobs)) == len(jobs)
    for job in prometheus["scrape_configs"]:
        hosts = [name for discovery in job.get("dns_sd_configs", ()) for name in discovery["names"]]
        hosts += [target.rsplit(":", 1)[0] for static in job.get("static_configs", ()) for target in static["targets"]]
        assert hosts, job["job_name"]
        for host in hosts:
            assert host in services or (host == "localhost" and job["job_name"] == "prometheus"), host
    assert "proxy" not in str(prometheus["scrape_configs"])


# -- the compose profile ------------------------------------------------------------------------------------------


def test_the_profile_adds_prometheus_and_grafana_and_plain_up_does_not(services: dict[str, Any]) -> None:
    plain = started(services, set())
    observed = started(services, {PROFILE})
    assert not plain & OBSERVABILITY_SERVICES and observed == plain | OBSERVABILITY_SERVICES
    for name in OBSERVABILITY_SERVICES:
        assert services[name]["profiles"] == [PROFILE]
        # compose refuses to start a service whose dependency the active profiles leave out.
        assert set(services[name].get("depends_on", {})) <= observed, name


def test_the_file_is_valid_compose_with_the_profile() -> None:
    result = compose("--profile", PROFILE, "config", "-q")
    assert result.returncode == 0, result.stderr


def test_the_images_are_the_official_ones_pinned(services: dict[str, Any]) -> None:
    assert re.fullmatch(r"prom/prometheus:v\d+\.\d+\.\d+", services["prometheus"]["image"])
    assert re.fullmatch(r"grafana/grafana:\d+\.\d+\.\d+", services["grafana"]["image"])


def test_config_is_mounted_read_only_and_ports_stay_on_loopback(services: dict[str, Any]) -> None:
    assert bind_mounts(services["prometheus"]) == {PROMETHEUS_CONFIG: ("/etc/prometheus/prometheus.yml", "ro")}
    for name in OBSERVABILITY_SERVICES:
        assert all(mode == "ro" and source.exists() for source, (_, mode) in bind_mounts(services[name]).items())
        assert services[name]["ports"] and all(port.startswith("127.0.0.1:") for port in services[name]["ports"])


# -- the metrics document ---------------------------------------------------------------------------------------


def test_the_documents_promql_selects_only_series_the_app_exports() -> None:
    blocks = promql_blocks(METRICS_DOC.read_text())
    known = set(exported_series())
    assert blocks
    for block in blocks:
        names = metric_names(block)
        assert names and names <= known, f"{sorted(names - known)} in {block}"
        assert balanced(block), block
