"""deploy/helm/kgrank, checked offline: `helm lint` and `helm template` for the default values and three other
deployments, each rendering validated by kubeconform against the pinned Kubernetes' schemas, and the rendered
objects matched against what kgrank reads (services/core/settings.py) and runs (Dockerfile, loader.sh).
The tools come from deploy/helm/tools.sh; without them these tests skip, and fail under CI=true."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.core.settings import Settings
from tests.conftest import ROOT, unavailable

HELM_DIR = ROOT / "deploy" / "helm"
CHART = HELM_DIR / "kgrank"
VERSIONS = dict(
    line.split("=", 1)
    for line in (HELM_DIR / "versions.env").read_text().splitlines()
    if line and not line.startswith("#")
)
KUBERNETES_VERSION = VERSIONS["KUBERNETES_VERSION"]
TOOLS_BIN = ROOT / ".kgrank" / "tools" / "bin"
SCHEMAS = ROOT / ".kgrank" / "tools" / "k8s-schemas" / KUBERNETES_VERSION
RELEASE = "kg"
SECRET_VALUES = {"apiKey": "api-key-never-in-plain-env", "neo4jPassword": "neo4j-password-never-in-plain-env"}
SETTINGS_ENV = {f"KGRANK_{name.upper()}" for name in Settings.model_fields}

Manifest = dict[str, Any]

VALUE_SETS: dict[str, dict[str, Any]] = {
    "default": {"secret": SECRET_VALUES},
    "external-neo4j-cluster-and-redis-cluster": {
        "secret": SECRET_VALUES,
        "neo4j": {"deploy": False, "externalUri": "neo4j://neo4j.graph.svc:7687", "user": "kgrank"},
        "redis": {"deploy": False, "externalUrl": "redis://redis-cluster.cache.svc:6379", "cluster": True},
    },
    "vllm-two-replicas": {
        "secret": SECRET_VALUES,
        "vllm": {"enabled": True, "replicas": 2},
        "api": {"env": {"KGRANK_SCORER_TIMEOUT_S": "5"}},
    },
    "existing-secret-and-external-vllm": {
        "secret": {"existingSecret": "kgrank-credentials"},
        "autoscaling": {"enabled": False},
        "api": {"replicas": 3},
        "vllm": {"externalUrls": ["http://gpu-a.example:8000", "http://gpu-b.example:8000"]},
    },
}


def tool(name: str) -> str:
    binary = TOOLS_BIN / name
    if not binary.is_file():
        unavailable(f"{binary} missing: run deploy/helm/tools.sh")
    return str(binary)


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=120, check=False)


def values_file(values: dict[str, Any], tmp: Path) -> Path:
    path = tmp / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def helm_template(values: dict[str, Any], tmp: Path) -> subprocess.CompletedProcess[str]:
    return run(
        tool("helm"), "template", RELEASE, str(CHART), "--namespace", "kgrank",
        "--kube-version", KUBERNETES_VERSION, "--values", str(values_file(values, tmp)),
    )  # fmt: skip


def kubeconform(manifests: str) -> subprocess.CompletedProcess[str]:
    if not (SCHEMAS / ".complete").is_file():
        unavailable(f"Kubernetes schemas missing in {SCHEMAS}: run deploy/helm/tools.sh")
    location = f"{SCHEMAS}/{{{{ .ResourceKind }}}}{{{{ .KindSuffix }}}}.json"
    return run(
        tool("kubeconform"), "-strict", "-summary", "-output", "json", "-schema-location", location, stdin=manifests
    )


@pytest.fixture(scope="module")
def renderings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Each value set's rendered manifests, rendered once."""
    rendered = {}
    for name, values in VALUE_SETS.items():
        result = helm_template(values, tmp_path_factory.mktemp(name))
        assert result.returncode == 0, result.stderr
        rendered[name] = result.stdout
    return rendered


def parse(manifests: str) -> list[Manifest]:
    return [document for document in yaml.safe_load_all(manifests) if document]


def named(objects: list[Manifest], kind: str, component: str) -> Manifest:
    (found,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == f"{RELEASE}-kgrank-{component}"]
    return found


def kinds_of(objects: list[Manifest]) -> set[tuple[str, str]]:
    return {(o["kind"], o["metadata"]["name"].removeprefix(f"{RELEASE}-kgrank-")) for o in objects}


def containers(objects: list[Manifest]) -> Iterator[Manifest]:
    for o in objects:
        if o["kind"] in ("Deployment", "StatefulSet", "Job"):
            pod = o["spec"]["template"]["spec"]
            yield from pod.get("initContainers", [])
            yield from pod["containers"]


def container(objects: list[Manifest], kind: str, component: str) -> Manifest:
    (found,) = named(objects, kind, component)["spec"]["template"]["spec"]["containers"]
    return found


def env_of(c: Manifest) -> dict[str, Manifest]:
    return {entry["name"]: entry for entry in c.get("env", [])}


def plain_env(c: Manifest) -> dict[str, str]:
    return {name: entry["value"] for name, entry in env_of(c).items() if "value" in entry}


def api_settings(objects: list[Manifest], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings as kgrank reads them from the api container's environment (secrets as stand-ins)."""
    for name in SETTINGS_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in plain_env(container(objects, "Deployment", "api")).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("KGRANK_API_KEY", "stand-in")
    return Settings()


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_helm_lint_passes(value_set: str, tmp_path: Path) -> None:
    values = values_file(VALUE_SETS[value_set], tmp_path)
    result = run(tool("helm"), "lint", "--strict", str(CHART), "--values", str(values))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_every_object_is_valid_kubernetes(value_set: str, renderings: dict[str, str]) -> None:
    objects = parse(renderings[value_set])
    result = kubeconform(renderings[value_set])
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout)["summary"]
    assert summary == {"valid": len(objects), "invalid": 0, "errors": 0, "skipped": 0}


def test_kubeconform_rejects_a_misspelt_field(renderings: dict[str, str]) -> None:
    """The schemas are strict: a field Kubernetes does not know fails, so a passing rendering means something."""
    objects = parse(renderings["default"])
    named(objects, "Deployment", "api")["spec"]["template"]["spec"]["containers"][0]["readinessProbe"] = {
        "httpGet": {"path": "/readyz", "port": "http"},
        "periodSecond": 5,
    }
    result = kubeconform(yaml.safe_dump_all(objects))
    assert result.returncode != 0
    (invalid,) = [r for r in json.loads(result.stdout)["resources"] if r["status"] == "statusInvalid"]
    assert invalid["kind"] == "Deployment" and "periodSecond" in invalid["msg"]


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_the_api_runs_kgrank_serve_with_settings_kgrank_reads(value_set: str, renderings: dict[str, str]) -> None:
    objects = parse(renderings[value_set])
    api = container(objects, "Deployment", "api")
    assert api["command"] == ["kgrank", "serve", "--host", "0.0.0.0", "--port", "8080"]
    assert api["ports"] == [{"name": "http", "containerPort": 8080}]
    assert api["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert api["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert api["resources"]["requests"]["cpu"]  # the HPA's utilisation is relative to it
    for c in (api, container(objects, "Job", "loader-1")):
        assert set(env_of(c)) <= SETTINGS_ENV, set(env_of(c)) - SETTINGS_ENV
    service = named(objects, "Service", "api")
    assert service["spec"]["ports"][0]["port"] == 8080
    assert (
        service["spec"]["selector"].items()
        <= named(objects, "Deployment", "api")["spec"]["template"]["metadata"]["labels"].items()
    )


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_no_secret_value_appears_in_plain_env(value_set: str, renderings: dict[str, str]) -> None:
    objects = parse(renderings[value_set])
    secret_name = VALUE_SETS[value_set]["secret"].get("existingSecret") or f"{RELEASE}-kgrank-secret"
    for c in containers(objects):
        for value in plain_env(c).values():
            assert not any(secret in value for secret in SECRET_VALUES.values()), (c["name"], value)
        for name in ("KGRANK_API_KEY", "KGRANK_NEO4J_PASSWORD"):
            if name in env_of(c):
                assert env_of(c)[name]["valueFrom"]["secretKeyRef"] == {"name": secret_name, "key": name}
    api = env_of(container(objects, "Deployment", "api"))
    assert {"KGRANK_API_KEY", "KGRANK_NEO4J_PASSWORD"} <= api.keys()
    secrets = [o for o in objects if o["kind"] == "Secret"]
    if value_set == "existing-secret-and-external-vllm":
        assert secrets == []
    else:
        (secret,) = secrets
        assert secret["metadata"]["name"] == secret_name
        assert set(secret["data"]) == {"KGRANK_API_KEY", "KGRANK_NEO4J_PASSWORD"}


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_kgrank_accepts_the_api_environment(
    value_set: str, renderings: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = api_settings(parse(renderings[value_set]), monkeypatch)
    assert settings.model_dir is not None and settings.dataset_dir is not None and settings.retriever_dir is not None
    assert settings.neo4j_uri is not None


def test_the_default_release_bundles_neo4j_redis_and_the_loader(
    renderings: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = parse(renderings["default"])
    assert kinds_of(objects) == {
        ("Secret", "secret"), ("PersistentVolumeClaim", "work"), ("Job", "loader-1"),
        ("Deployment", "api"), ("Service", "api"), ("HorizontalPodAutoscaler", "api"),
        ("StatefulSet", "neo4j"), ("Service", "neo4j"), ("Deployment", "redis"), ("Service", "redis"),
    }  # fmt: skip
    settings = api_settings(objects, monkeypatch)
    assert settings.neo4j_uri == f"bolt://{RELEASE}-kgrank-neo4j:7687"
    assert settings.redis_url == f"redis://{RELEASE}-kgrank-redis:6379/0" and not settings.redis_cluster
    assert settings.scorer == "transformers"
    neo4j = named(objects, "StatefulSet", "neo4j")
    (claim,) = neo4j["spec"]["volumeClaimTemplates"]
    assert neo4j["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] == [
        {"name": claim["metadata"]["name"], "mountPath": "/data"}
    ]
    # The bundled Neo4j's password is the one the API sends, taken from the Secret, never written out.
    assert plain_env(container(objects, "StatefulSet", "neo4j"))["NEO4J_AUTH"] == "neo4j/$(KGRANK_NEO4J_PASSWORD)"


def test_the_hpa_scales_the_api_deployment(renderings: dict[str, str]) -> None:
    objects = parse(renderings["default"])
    hpa = named(objects, "HorizontalPodAutoscaler", "api")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": f"{RELEASE}-kgrank-api",
    }
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())["autoscaling"]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (
        defaults["minReplicas"],
        defaults["maxReplicas"],
    )
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["averageUtilization"] == defaults["targetCPUUtilizationPercentage"]
    assert "replicas" not in named(objects, "Deployment", "api")["spec"]  # the HPA owns the count


def test_the_loader_runs_the_compose_loader_from_the_image(renderings: dict[str, str]) -> None:
    loader = container(parse(renderings["default"]), "Job", "loader-1")
    assert loader["command"] == ["bash", "deploy/compose/loader.sh", "smollm2"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "WORKDIR /app" in dockerfile and "COPY deploy/compose deploy/compose" in dockerfile
    assert (ROOT / "deploy" / "compose" / "loader.sh").is_file()
    assert {m["mountPath"] for m in loader["volumeMounts"]} == {"/work", "/raw"}  # loader.sh's two paths


def test_an_external_neo4j_cluster_and_redis_cluster(
    renderings: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = parse(renderings["external-neo4j-cluster-and-redis-cluster"])
    assert not {("StatefulSet", "neo4j"), ("Deployment", "redis"), ("Service", "redis")} & kinds_of(objects)
    settings = api_settings(objects, monkeypatch)
    assert settings.neo4j_uri == "neo4j://neo4j.graph.svc:7687" and settings.neo4j_user == "kgrank"
    assert settings.redis_url == "redis://redis-cluster.cache.svc:6379" and settings.redis_cluster
    assert plain_env(container(objects, "Job", "loader-1"))["KGRANK_NEO4J_URI"] == settings.neo4j_uri


def test_vllm_on_gpus_scores_for_the_api(renderings: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    objects = parse(renderings["vllm-two-replicas"])
    deployment = named(objects, "Deployment", "vllm")
    assert deployment["spec"]["replicas"] == 2
    vllm = container(objects, "Deployment", "vllm")
    assert vllm["resources"]["requests"]["nvidia.com/gpu"] == vllm["resources"]["limits"]["nvidia.com/gpu"] == 1
    flags = dict(zip(vllm["args"][::2], vllm["args"][1::2], strict=True))
    settings = api_settings(objects, monkeypatch)
    assert flags["--model"] == str(settings.model_dir)
    assert flags["--served-model-name"] == settings.vllm_model == Settings.model_fields["vllm_model"].default
    assert flags["--logprobs-mode"] == "processed_logprobs" and int(flags["--max-logprobs"]) >= 20
    service = named(objects, "Service", "vllm")
    assert settings.scorer == "vllm"
    assert settings.vllm_url == f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}"
    assert settings.scorer_timeout_s == 5  # from api.env


def test_an_existing_secret_and_external_vllm_servers(
    renderings: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = parse(renderings["existing-secret-and-external-vllm"])
    assert not {("Deployment", "vllm"), ("HorizontalPodAutoscaler", "api")} & kinds_of(objects)
    assert named(objects, "Deployment", "api")["spec"]["replicas"] == 3
    settings = api_settings(objects, monkeypatch)
    assert settings.scorer == "vllm"
    assert settings.vllm_url == "http://gpu-a.example:8000,http://gpu-b.example:8000"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"autoscaling": {"maxReplicas": "many"}}, "/autoscaling/maxReplicas"),
        ({"api": {"env": {"KGRANK_API_KEY": "in-plain-sight"}}}, "invalid propertyName 'KGRANK_API_KEY'"),
        ({"api": {"env": {"REDIS_URL": "redis://r:6379"}}}, "invalid propertyName 'REDIS_URL'"),
        ({"api": {"env": {"KGRANK_SCORER": "vllm"}}}, "invalid propertyName 'KGRANK_SCORER'"),
        ({"neo4j": {"deploy": False, "externalUri": "http://neo4j:7474"}}, "/neo4j/externalUri"),
        ({"vllm": {"enabled": True, "gpu": 1}}, "additional properties 'gpu' not allowed"),
    ],
)
def test_values_against_the_schema_fail_to_render(values: dict[str, Any], message: str, tmp_path: Path) -> None:
    result = helm_template({"secret": SECRET_VALUES, **values}, tmp_path)
    assert result.returncode != 0
    assert "don't meet the specifications of the schema" in result.stderr and message in result.stderr


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "secret.apiKey"),
        ({"secret": SECRET_VALUES, "neo4j": {"deploy": False}}, "neo4j.externalUri is required"),
        ({"secret": SECRET_VALUES, "redis": {"cluster": True}}, "redis.cluster needs redis.externalUrl"),
        ({"secret": SECRET_VALUES, "vllm": {"enabled": True, "externalUrls": ["http://a:8000"]}}, "choose"),
    ],
)
def test_contradictory_or_missing_values_fail_to_render(values: dict[str, Any], message: str, tmp_path: Path) -> None:
    result = helm_template(values, tmp_path)
    assert result.returncode != 0 and message in result.stderr
