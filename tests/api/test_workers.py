"""`kgrank serve --workers 2`: two processes answer on one port, a write through one is seen fresh by both,
SIGTERM stops them all, and a bad setting ends as one error line before any worker starts.

Which worker answered is read from Linux's /proc: the process holding the server end of the connection.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest

from services.api.local import free_port
from tests.api.conftest import Served, wait_healthy
from tests.unit.test_cli import assert_one_error, cli_environment, kgrank

pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").is_file(), reason="reads sockets from Linux's /proc")

WORKERS = 2


def _descendants(pid: int) -> set[int]:
    """Every live process below `pid` (the workers and multiprocessing's helper)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: set[int] = set()
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.add(child)
            pending.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _server_end_inode(server_port: int, client_port: int) -> str:
    """The socket inode of the open connection from `client_port` (lines of /proc/net/tcp: local and remote
    address as HEXIP:HEXPORT in fields 1 and 2, the state in 3 (01: established), the inode in 9)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port, remote_port = (int(address.rsplit(":", 1)[1], 16) for address in fields[1:3])
        if (local_port, remote_port, fields[3]) == (server_port, client_port, "01"):
            return fields[9]
    raise AssertionError(f"no server end of the connection from port {client_port}")


def _holder(inode: str, candidates: set[int]) -> int:
    for pid in candidates:
        try:
            if any(os.readlink(fd) == f"socket:[{inode}]" for fd in Path(f"/proc/{pid}/fd").iterdir()):
                return pid
        except OSError:  # a descriptor closed while we looked
            continue
    raise AssertionError(f"no process below the server holds socket {inode}")


def _ask(port: int, server_pid: int, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST `body` on a new connection; the worker's pid (read while the connection is open) and the answer."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        answer = json.loads(response.read())
        assert response.status == 200, answer
        inode = _server_end_inode(port, connection.sock.getsockname()[1])
        return _holder(inode, _descendants(server_pid)), answer
    finally:
        connection.close()


def _rank_on_every_worker(port: int, server_pid: int, body: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """New connections until each worker has answered /rank at least once: pid -> its latest answer."""
    answers: dict[int, dict[str, Any]] = {}
    deadline = time.monotonic() + 120
    while len(answers) < WORKERS:
        assert time.monotonic() < deadline, f"only workers {sorted(answers)} answered"
        pid, answer = _ask(port, server_pid, "/rank", body)
        answers[pid] = answer
    return answers


@contextmanager
def _serving(served: Served, log: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = free_port()
    env = cli_environment(None)
    command = [
        *(sys.executable, "-m", "kgrank", "serve", "--workers", str(WORKERS), "--port", str(port), "--open-writes"),
        *("--data", str(served.data_dir), "--model", str(served.bundle.ranker)),
        *("--retriever", str(served.bundle.retriever)),
    ]
    with log.open("w") as sink:
        # A process group of its own, as in a terminal: Ctrl-C there sends SIGINT to every process of it.
        server = subprocess.Popen(command, stdout=sink, stderr=sink, env=env, start_new_session=True)
    try:
        wait_healthy(server, f"http://127.0.0.1:{port}", log)
        yield port, server
    finally:
        with suppress(ProcessLookupError):  # a failed test leaves no worker behind
            os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)


def _assert_all_stop(server: subprocess.Popen[bytes], processes: set[int], log: Path) -> None:
    assert server.wait(timeout=60) == 0, log.read_text()
    deadline = time.monotonic() + 10
    while (left := {pid for pid in processes if _alive(pid)}) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"processes {sorted(left)} outlived the server"


def test_workers_share_the_port_see_fresh_writes_and_stop_together(served: Served, tmp_path: Path) -> None:
    user = f"worker-test-{uuid.uuid4().hex[:8]}"  # new to the graph: version 0, no other test's history
    watched, *others = [item.id for item in served.dataset.items[:11]]
    rank = {"user_id": user, "candidates": others, "explain": False}
    log = tmp_path / "serve.log"
    with _serving(served, log) as (port, server):
        before = _rank_on_every_worker(port, server.pid, rank)  # each worker caches the ranking of version 0
        assert {answer["user_version"] for answer in before.values()} == {0}, before

        writer, recorded = _ask(port, server.pid, "/interactions", {"user_id": user, "item_id": watched})
        assert recorded["user_version"] == 1
        after = _rank_on_every_worker(port, server.pid, rank)
        assert writer in after and {answer["user_version"] for answer in after.values()} == {1}, after

        processes = _descendants(server.pid)
        server.send_signal(signal.SIGTERM)  # to the supervisor only, as a process manager stops it
        _assert_all_stop(server, processes, log)


def test_ctrl_c_stops_every_worker(served: Served, tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    with _serving(served, log) as (port, server):
        _rank_on_every_worker(port, server.pid, {"user_id": "ctrl-c", "candidates": [served.dataset.items[0].id]})
        processes = _descendants(server.pid)
        os.killpg(server.pid, signal.SIGINT)
        _assert_all_stop(server, processes, log)


def test_a_bad_setting_stops_before_any_worker_starts(served: Served, tmp_path: Path) -> None:
    result = kgrank(
        *("serve", "--workers", str(WORKERS), "--port", str(free_port())),
        *("--data", served.data_dir, "--model", tmp_path / "no-checkpoint", "--retriever", served.bundle.retriever),
    )
    assert_one_error(result, "no-checkpoint")
    assert "Started parent process" not in result.stderr and "Started server process" not in result.stderr
