"""docker-compose.yml, checked without a Docker engine: Debian's docker-compose validates it (`config -q`
rejects unknown keys and bad `depends_on` conditions), and its settings match what kgrank reads."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from services.core.settings import Settings
from tests.conftest import ROOT, unavailable

COMPOSE = ROOT / "docker-compose.yml"


def compose(
    *args: str, file: Path = COMPOSE, password: str | None = "pw", api_key: str | None = "key-0123456789"
) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        unavailable("docker-compose not installed (apt-get install docker-compose)")
    env = {k: v for k, v in os.environ.items() if k not in ("NEO4J_PASSWORD", "KGRANK_SCORER", "KGRANK_API_KEY")}
    if password is not None:
        env["NEO4J_PASSWORD"] = password
    if api_key is not None:
        env["KGRANK_API_KEY"] = api_key
    return subprocess.run(
        [binary, "-f", str(file), "--project-directory", str(ROOT), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def resolved() -> dict:
    result = compose("--profile", "gpu", "config")
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_the_file_is_valid_compose() -> None:
    result = compose("config", "-q")
    assert result.returncode == 0, result.stderr


def test_the_neo4j_password_is_never_defaulted() -> None:
    result = compose("config", "-q", password=None)
    assert result.returncode != 0 and "NEO4J_PASSWORD" in result.stderr


@pytest.mark.parametrize("api_key", [None, ""])
def test_the_api_key_is_never_defaulted_or_empty(api_key: str | None) -> None:
    result = compose("config", "-q", api_key=api_key)
    assert result.returncode != 0 and "KGRANK_API_KEY" in result.stderr


def test_the_validator_rejects_what_docker_would(tmp_path: Path) -> None:
    text = COMPOSE.read_text()
    for broken in (
        text.replace("condition: service_healthy", "condition: service_warm", 1),
        text.replace("    ipc: host\n", "    ipc: host\n    gpus_please: true\n"),
    ):
        copy = tmp_path / "docker-compose.yml"
        copy.write_text(broken)
        assert compose("config", "-q", file=copy).returncode != 0


def test_services_and_their_wiring(resolved: dict) -> None:
    services = resolved["services"]
    assert set(services) == {"neo4j", "redis", "loader", "vllm", "api", "proxy", "prometheus", "grafana"}
    assert services["neo4j"]["image"] == "neo4j:5.26-community"
    assert services["neo4j"]["environment"]["NEO4J_AUTH"] == "neo4j/pw"
    assert "7474" in str(services["neo4j"]["ports"]) and services["neo4j"]["healthcheck"]["test"]
    assert services["vllm"]["profiles"] == ["gpu"] and services["vllm"]["image"].startswith("vllm/vllm-openai")
    api = services["api"]
    assert api["depends_on"] == {
        "neo4j": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
        "loader": {"condition": "service_completed_successfully"},
    }
    assert (ROOT / "deploy" / "compose" / "loader.sh").is_file() and (ROOT / "Dockerfile").is_file()


def test_the_api_scales_behind_the_proxy(resolved: dict) -> None:
    """`--scale api=N` needs an api without a host port or a fixed name; the proxy publishes the port, finds
    the replicas through Docker's DNS and is healthy only when one answers."""
    api, proxy = resolved["services"]["api"], resolved["services"]["proxy"]
    assert "ports" not in api and "container_name" not in api
    assert proxy["image"].startswith("nginx:") and proxy["ports"] == ["127.0.0.1:8080:8080/tcp"]
    assert proxy["depends_on"] == {"api": {"condition": "service_healthy"}}
    assert "/healthz" in " ".join(proxy["healthcheck"]["test"])
    (mount,) = proxy["volumes"]
    source, target, mode = mount.rsplit(":", 2)
    assert (target, mode) == ("/etc/nginx/conf.d/default.conf", "ro")
    config = Path(source).read_text()
    assert "listen 8080;" in config and "resolver 127.0.0.11 " in config
    # Through a variable, so nginx resolves `api` per request (new replicas), not once at start.
    assert "set $kgrank_api http://api:8080;" in config and "proxy_pass $kgrank_api;" in config


def test_kgrank_reads_every_variable_the_file_sets(resolved: dict) -> None:
    fields = {f"KGRANK_{name.upper()}" for name in Settings.model_fields}
    for name in ("loader", "api"):
        environment = resolved["services"][name]["environment"]
        assert set(environment) <= fields, set(environment) - fields
    api = resolved["services"]["api"]["environment"]
    assert api["KGRANK_NEO4J_PASSWORD"] == "pw" and api["KGRANK_NEO4J_URI"] == "bolt://neo4j:7687"


def test_vllm_serves_the_checkpoint_the_way_the_scorer_reads_it(resolved: dict) -> None:
    command = resolved["services"]["vllm"]["command"]
    flags = dict(zip(command[::2], command[1::2], strict=True))
    api = resolved["services"]["api"]["environment"]
    assert flags["--model"] == api["KGRANK_MODEL_DIR"]
    assert flags["--served-model-name"] == Settings().vllm_model
    assert flags["--logprobs-mode"] == "processed_logprobs"
    assert int(flags["--max-logprobs"]) >= 20  # all letters A..T
