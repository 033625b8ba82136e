"""`make servers-up` never puts the Neo4j password on a command line, where `ps` and /proc/*/cmdline show it
to every user of the machine: a watcher reads every process's command line while a fresh Neo4j (and Redis)
is set up and started, and the server really uses the password it was given."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from services.api.local import free_port
from services.core.settings import Settings
from tests.conftest import ROOT, unavailable


class CommandLineWatcher(threading.Thread):
    """Collects every process command line that contains `secret`, until stopped."""

    def __init__(self, secret: str) -> None:
        super().__init__(daemon=True)
        self._secret = secret.encode()
        self._done = threading.Event()
        self.seen: set[str] = set()
        self.scans = 0

    def run(self) -> None:
        while not self._done.is_set():
            for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
                try:
                    raw = cmdline.read_bytes()
                except OSError:  # the process ended meanwhile
                    continue
                if self._secret in raw:
                    self.seen.add(raw.replace(b"\0", b" ").decode(errors="replace"))
            self.scans += 1

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=10)


@pytest.mark.neo4j
def test_servers_up_keeps_the_password_off_every_command_line(tmp_path: Path) -> None:
    jars = ROOT / ".neo4j" / "lib"
    if not (jars / ".pom.sha256").is_file() or shutil.which("redis-server") is None:
        unavailable("needs the Neo4j jars (make neo4j-up fetches them) and redis-server")
    home, redis_home = tmp_path / "neo4j", tmp_path / "redis"
    home.mkdir()
    (home / "lib").symlink_to(jars)  # already resolved: no Maven run
    password = f'pw-{secrets.token_hex(12)} with "quotes" \\ and spaces'
    (home / "password").write_text(password)
    bolt, http, redis_port = free_port(), free_port(), free_port()
    env = os.environ | {
        "NEO4J_HOME": str(home),
        "NEO4J_BOLT_ADDRESS": f"127.0.0.1:{bolt}",
        "NEO4J_HTTP_ADDRESS": f"127.0.0.1:{http}",
        "NEO4J_HEAP": "384m",
        "NEO4J_PAGECACHE": "64m",
        "REDIS_HOME": str(redis_home),
        "REDIS_PORT": str(redis_port),
    }
    watcher = CommandLineWatcher(password)
    watcher.start()
    try:
        up = subprocess.run(
            ["make", "-s", "servers-up"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
        )
        assert up.returncode == 0, up.stderr
        from services.graph_loader.neo4j_connection import open_driver

        settings = Settings(neo4j_uri=f"bolt://127.0.0.1:{bolt}", neo4j_password=password)
        open_driver(settings).close()  # the server took exactly this password
    finally:
        try:
            watcher.stop()
        finally:  # the servers of this test go down whatever happened above
            for script in ("deploy/neo4j/neo4j.sh", "deploy/redis/redis.sh"):
                subprocess.run(["bash", script, "down"], cwd=ROOT, env=env, capture_output=True, timeout=120)
    assert watcher.scans > 10, "the watcher did not get to look"
    assert watcher.seen == set()
    assert "KGRANK_NEO4J_PASSWORD" in (home / "env").read_text()
    assert oct((home / "env").stat().st_mode & 0o777) == "0o600"
