"""docker-compose.yml brought up for real, with CI's override (docker-compose.ci.yml): the local images of
deploy/images/build.sh on the host's network. The loader loads the real ml-latest-small into the container Neo4j
and trains the tiny bundle, then the API ranks through the proxy with graph paths as explanations and caches in
the container Redis. Needs Compose v2 and a Docker engine (DOCKER_HOST, else deploy/images/dockerd.sh's) holding
those images, all from `make images`: without them the test fails under CI=true and skips elsewhere. The stack is
always taken down, volumes included."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import ROOT, unavailable

FILES = ("docker-compose.yml", "docker-compose.ci.yml")
PROJECT = "kgrank-ci-test"
PRIVATE_ENGINE = ROOT / ".kgrank" / "docker" / "docker.sock"  # deploy/images/dockerd.sh's socket
# Compose v2 as deploy/images/build.sh builds it: Debian's v1 refuses published ports beside network_mode: host.
COMPOSE = ROOT / ".kgrank" / "images" / "bin" / "docker-compose"
PROXY = "http://127.0.0.1:18080"
NEO4J_HTTP = "http://127.0.0.1:17474"
# Where the override's services listen: something else there and the stack cannot come up.
PORTS = (17474, 17687, 16379, 18080, 18081)
# `up -d` returns once the loader has loaded the graph and trained the tiny bundle: minutes on 2 cores.
UP_TIMEOUT_S = 1200
PROXY_TIMEOUT_S = 120

pytestmark = [pytest.mark.real_data, pytest.mark.timeout(UP_TIMEOUT_S + 600)]


def docker_host() -> str | None:
    if "DOCKER_HOST" in os.environ:
        return os.environ["DOCKER_HOST"]
    return f"unix://{PRIVATE_ENGINE}" if PRIVATE_ENGINE.is_socket() else None


class Stack:
    def __init__(self, raw_dir: Path) -> None:
        self.password = secrets.token_hex(12)
        self.api_key = secrets.token_hex(16)
        env = {k: v for k, v in os.environ.items() if k not in ("KGRANK_SCORER", "COMPOSE_FILE")}
        env |= {
            "NEO4J_PASSWORD": self.password,
            "KGRANK_API_KEY": self.api_key,
            "KGRANK_RAW_DIR": str(raw_dir.resolve()),
        }
        host = docker_host()
        if host is not None:
            env["DOCKER_HOST"] = host
        self.env = env

    def run(self, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(args), capture_output=True, text=True, env=self.env, timeout=timeout, check=False)

    def compose(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        files = [arg for name in FILES for arg in ("-f", str(ROOT / name))]
        return self.run(str(COMPOSE), *files, "--project-directory", str(ROOT), "-p", PROJECT, *args, timeout=timeout)

    def check_ready(self) -> None:
        """The engine answers and holds every image the override names; with what a killed earlier run left taken
        down, the override's ports are free."""
        if shutil.which("docker") is None:
            unavailable("docker not installed (apt-get install docker.io)")
        if not os.access(COMPOSE, os.X_OK):
            unavailable(f"Compose v2 not built at {COMPOSE} (deploy/images/build.sh compose)")
        try:
            engine = self.run("docker", "version", "--format", "{{.Server.Version}}", timeout=30)
        except subprocess.TimeoutExpired:
            unavailable(f"the Docker engine at {self.env.get('DOCKER_HOST', 'the default socket')} does not answer")
        if engine.returncode != 0:
            unavailable(f"no Docker engine (deploy/images/dockerd.sh up): {engine.stderr.strip()[:300]}")
        override = yaml.safe_load((ROOT / "docker-compose.ci.yml").read_text())
        images = sorted({service["image"] for service in override["services"].values()})
        missing = [image for image in images if self.run("docker", "image", "inspect", image, timeout=30).returncode]
        if missing:
            unavailable(f"images not built: {', '.join(missing)} (deploy/images/build.sh)")
        self.compose("down", "-v", "--remove-orphans")
        for port in PORTS:
            with socket.socket() as probe:
                probe.settimeout(1)
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    unavailable(f"127.0.0.1:{port} is taken: docker-compose.ci.yml's services listen there")

    def print_state(self) -> None:
        """What a failure needs: every container's state and the end of its log (pytest shows it on failure)."""
        for args in (("ps",), ("logs", "--no-color", "--tail=150")):
            try:
                result = self.compose(*args, timeout=60)
                print(f"$ docker-compose {' '.join(args)}\n{result.stdout}{result.stderr}")
            except subprocess.TimeoutExpired:
                print(f"$ docker-compose {' '.join(args)}: no answer in 60 s")


@contextlib.contextmanager
def running(stack: Stack) -> Iterator[None]:
    try:
        started = time.monotonic()
        up = stack.compose("up", "-d", timeout=UP_TIMEOUT_S)
        print(f"docker-compose up -d: {time.monotonic() - started:.0f} s")
        assert up.returncode == 0, f"docker-compose up failed:\n{up.stderr[-4000:]}"
        yield
    except BaseException:
        stack.print_state()
        raise
    finally:
        down = stack.compose("down", "-v", "--remove-orphans", timeout=180)
    assert down.returncode == 0, down.stderr  # only when nothing failed before: that failure is the one to see


def wait_for_proxy(deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            if httpx.get(f"{PROXY}/healthz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"the proxy did not answer /healthz within {deadline_s:.0f} s")
        time.sleep(2)


def test_compose_up_loads_the_graph_and_ranks_with_graph_paths(real_ml_dir: Path) -> None:
    stack = Stack(real_ml_dir)
    stack.check_ready()
    with running(stack):
        loader = stack.compose("logs", "--no-color", "loader", timeout=60).stdout
        assert "downloading" not in loader, "the loader fetched the raw data instead of reading the mounted files"

        # The graph the loader wrote lives in the container Neo4j.
        graph = httpx.post(
            f"{NEO4J_HTTP}/db/neo4j/tx/commit",
            json={"statements": [{"statement": "MATCH (u:User) RETURN count(u)"}]},
            auth=("neo4j", stack.password),
            timeout=30,
        ).json()
        assert graph["errors"] == [] and graph["results"][0]["data"][0]["row"] == [610], graph

        wait_for_proxy(PROXY_TIMEOUT_S)
        request = {"user_id": "1"}  # no candidates: the served retriever picks the top 20
        assert httpx.post(f"{PROXY}/rank", json=request, timeout=60).status_code == 401
        headers = {"X-API-Key": stack.api_key}
        answer = httpx.post(f"{PROXY}/rank", json=request, headers=headers, timeout=120)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["known_user"] and body["candidates_from"] == "retriever" and len(body["ranking"]) == 20
        assert body["model"]["base_model"] == "tiny" and body["model"]["ranked_by"] == "llm"
        assert body["degraded"] == [] and not body["cached"], body["degraded"]
        explanations = [e for item in body["ranking"] for e in item["explanations"]]
        assert explanations, "no ranked item carries a graph path"
        for explanation in explanations:
            kinds = {element["kind"] for element in explanation["path"]}
            assert kinds == {"node", "relationship"} and explanation["cypher"].startswith("MATCH"), explanation

        again = httpx.post(f"{PROXY}/rank", json=request, headers=headers, timeout=60).json()
        assert again["cached"] and again["ranking"] == body["ranking"]
        # The cache that answered is the container Redis.
        keys = stack.compose("exec", "-T", "redis", "redis-cli", "-p", "16379", "dbsize", timeout=60)
        assert keys.returncode == 0 and int(keys.stdout) > 0, keys.stderr
