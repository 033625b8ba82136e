"""Real Redis servers from Debian's `redis-server` on free loopback ports, each in a folder of its own: one
standalone server, or a Redis Cluster of masters without replicas (`redis-cli --cluster create`). Nothing is
shared with the Redis other tests and users run (6379): every port is picked free, and every process is
stopped when its block ends, even after a test killed it.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from services.api.local import free_port

STARTUP_TIMEOUT_S = 30.0


class RedisServerError(RuntimeError):
    """A server or the cluster did not come up; the message holds the end of the server's log."""


@dataclass(frozen=True)
class RedisNode:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        """A plain client on this one server (in a cluster: it sees only the keys this node holds)."""
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5, socket_connect_timeout=5)

    def kill(self) -> None:
        """Die as a crashed server does: no shutdown, no goodbye to the cluster."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass(frozen=True)
class LocalRedisCluster:
    nodes: tuple[RedisNode, ...]

    @property
    def url(self) -> str:
        """One node's URL: what KGRANK_REDIS_URL holds; the client finds the others."""
        return self.nodes[0].url

    def states(self) -> dict[int, str]:
        """`cluster_state` as each node still running sees it (port → ok or fail)."""
        states = {}
        for node in self.nodes:
            if node.process.poll() is None:
                with node.client() as client:
                    states[node.port] = str(client.cluster("INFO")["cluster_state"])
        return states

    def owner(self, key: str) -> RedisNode:
        """The master that serves `key`'s slot now."""
        slot = self._slot(key)
        with self.nodes[0].client() as client:
            ranges = client.execute_command("CLUSTER", "SLOTS")
        (port,) = [master[1] for first, last, master, *_ in ranges if first <= slot <= last]
        return next(node for node in self.nodes if node.port == port)

    def move_slot(self, key: str, to: RedisNode, *, finish: bool = True) -> None:
        """Move the slot holding `key`, with its keys, to `to` the way `redis-cli --cluster reshard` moves each
        slot. With `finish=False` it stops half way: the keys are on `to` but the slot still belongs to the
        old master, which answers ASK for them; a second call with `finish=True` completes the move, after
        which the old master answers MOVED."""
        slot = self._slot(key)
        source = self.owner(key)
        with source.client() as old, to.client() as new:
            to_id, source_id = new.execute_command("CLUSTER", "MYID"), old.execute_command("CLUSTER", "MYID")
            new.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
            old.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", to_id)
            while keys := old.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100):
                old.execute_command("MIGRATE", "127.0.0.1", to.port, "", 0, 5000, "KEYS", *keys)
        if finish:
            for node in self.nodes:
                with node.client() as client:
                    client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", to_id)

    def _slot(self, key: str) -> int:
        with self.nodes[0].client() as client:
            return int(client.execute_command("CLUSTER", "KEYSLOT", key))

    def wait_for_state(self, state: str, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        """Until every running node reports `cluster_state:<state>` (after a start, a kill or a restart)."""
        deadline = time.monotonic() + timeout_s
        while set((seen := self.states()).values()) != {state}:
            if time.monotonic() > deadline:
                raise RedisServerError(f"cluster_state is not {state} on every node after {timeout_s:.0f} s: {seen}")
            time.sleep(0.1)


def redis_binaries_missing() -> str | None:
    """Why no local Redis can be started here, or None when `redis-server` and `redis-cli` are installed."""
    missing = [name for name in ("redis-server", "redis-cli") if shutil.which(name) is None]
    return f"{' and '.join(missing)} not installed (apt-get install redis-server)" if missing else None


@contextmanager
def redis_server(folder: Path, *, cluster_node_timeout_ms: int | None = None) -> Iterator[RedisNode]:
    """One `redis-server` on a free port with its files in `folder`; with `cluster_node_timeout_ms`, a
    cluster-enabled node (its bus on a second free port) that no cluster holds yet."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = folder / "redis.log"
    # A cache, not a store: no snapshots, no append-only file.
    command = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--dir", str(folder)]
    command += ["--logfile", str(log), "--save", "", "--appendonly", "no"]
    if cluster_node_timeout_ms is not None:
        # The bus port is chosen too: the default (port + 10000) may be taken or beyond 65535.
        command += ["--cluster-enabled", "yes", "--cluster-config-file", str(folder / "nodes.conf")]
        command += ["--cluster-port", str(free_port()), "--cluster-node-timeout", str(cluster_node_timeout_ms)]
    node = RedisNode(port, subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE), log)
    try:
        _wait_for_ping(node)
        yield node
    finally:
        node.stop()


@contextmanager
def redis_cluster(masters: int = 3, *, node_timeout_ms: int = 1000) -> Iterator[LocalRedisCluster]:
    """A Redis Cluster of `masters` masters and no replicas, every slot covered and `cluster_state:ok` on each
    node. A short node timeout makes a killed master count as failed (and the cluster as down) within about a
    second."""
    with tempfile.TemporaryDirectory(prefix="kgrank-redis-cluster-") as tmp, ExitStack() as running:
        nodes = tuple(
            running.enter_context(redis_server(Path(tmp) / f"node-{i}", cluster_node_timeout_ms=node_timeout_ms))
            for i in range(masters)
        )
        addresses = [f"127.0.0.1:{node.port}" for node in nodes]
        created = subprocess.run(
            ["redis-cli", "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True,
            text=True,
            timeout=STARTUP_TIMEOUT_S,
            check=False,
        )
        if created.returncode != 0:
            raise RedisServerError(f"redis-cli --cluster create failed: {created.stdout[-2000:]}{created.stderr}")
        cluster = LocalRedisCluster(nodes)
        cluster.wait_for_state("ok")
        yield cluster


def _wait_for_ping(node: RedisNode) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    with node.client() as client:
        while True:
            if node.process.poll() is not None:
                stderr = node.process.stderr.read().decode() if node.process.stderr else ""
                raise RedisServerError(f"redis-server on port {node.port} exited: {stderr}{_tail(node.log)}")
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RedisServerError(f"redis-server on port {node.port} did not answer PING: {_tail(node.log)}")
            time.sleep(0.05)


def _tail(log: Path) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-20:]) if log.is_file() else ""
