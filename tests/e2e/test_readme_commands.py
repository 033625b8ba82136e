"""The README's commands work as written: every flag it names is in that command's --help, and its command blocks
run, in order, on the real ml-latest-small with small training settings (a kgrank.toml of command defaults, the
README's own config mechanism), so a renamed option or a changed path in the README fails here."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer

from kgrank.cli import app
from services.api.local import free_port
from tests.api.conftest import wait_healthy
from tests.conftest import ROOT
from tests.unit.test_cli import cli_environment

README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w*)\s*$")
INLINE_COMMAND = re.compile(r"`((?:\.venv/bin/)?kgrank [^`]+)`")
# Commands of the blocks that this test does not run (a part of the line → why); it runs the rest.
NOT_RUN = {
    "make ": "make demo and make test are what CI runs (tests/e2e/test_demo.py runs the demo); the other targets "
    "start servers or build images that CI starts and builds itself",
    "vllm serve": "vLLM is not ours and not installed here; its client is tested against protocol bodies",
    "docker compose": "tests/deploy/test_compose.py and test_compose_up.py run the compose file",
    ".venv/bin/pytest": "a test run",
    "source ": "sets the shell's environment for the commands after it",
    "python -m benchmarks.": "benchmarks need servers and the demo's models; their --help and flags are checked",
    "KGRANK_NEO4J_IMPORT_COMMAND": "a bulk load restarts the local Neo4j: tests/integration/test_bulk_import.py",
    "--neo4j-uri": "Neo4j loads of the real data: tests/e2e/test_real_ml_latest_small.py",
    "kgrank base-model fetch": "downloads from PyPI; tests/unit/test_base_models.py covers the conversion",
}
# The training commands run small: the README's commands, with these option defaults from kgrank.toml.
SMALL_TRAINING = """
[train.retriever]
max_epochs = 1
dim = 16

[train.preference]
train_examples = 64
max_epochs = 1

[train.ranker]
train_examples = 64
epochs = 1

[train.bundle]
train_examples = 64
base_model = "tiny"
"""


def readme_blocks() -> list[str]:
    """The commands of the README's bash blocks, continuation lines joined, comments dropped."""
    commands, language, inside = [], "", False
    lines: list[str] = []
    for line in README.read_text().splitlines():
        fence = FENCE.match(line.strip())
        if fence and not inside:
            inside, language, lines = True, fence.group(1), []
        elif fence and inside:
            inside = False
            if language in ("bash", "sh"):
                commands += commands_of("\n".join(lines))
        elif inside:
            lines.append(line)
    return commands


def commands_of(block: str) -> list[str]:
    joined = re.sub(r"\\\n\s*", " ", block)
    commands = []
    current = ""
    for line in joined.splitlines():
        current = f"{current}\n{line}" if current else line.strip()
        try:
            tokens = shlex.split(current, comments=True)
        except ValueError:  # an open quote: the command goes on on the next line
            continue
        if tokens:
            commands.append(shlex.join(tokens))
        current = ""
    return commands


def inline_commands() -> list[str]:
    """`kgrank …` spans in the prose (placeholders such as DIR or … included: only their flags are checked)."""
    return [match.group(1) for match in INLINE_COMMAND.finditer(README.read_text())]


def command_and_flags(line: str) -> tuple[list[str], Any, list[str]]:
    """The subcommand path a `kgrank …` line names, its click command, and the flags it passes."""
    tokens = shlex.split(line.replace("…", ""))
    assert tokens[0].endswith("kgrank"), line
    command = typer.main.get_command(app)  # typer's own bundled click: its classes, not the click package's
    path: list[str] = []
    for token in tokens[1:]:
        if not hasattr(command, "commands") or token.startswith("-"):
            break
        assert token in command.commands, f"README: `{line}`: no command {token!r} under kgrank {' '.join(path)}"
        command, path = command.commands[token], [*path, token]
    flags = [token.split("=", 1)[0] for token in tokens if token.startswith("--")]
    return path, command, flags


def test_the_readme_shows_commands() -> None:
    blocks = readme_blocks()
    assert sum(c.startswith("kgrank ") for c in blocks) >= 12 and len(inline_commands()) >= 10


@pytest.mark.parametrize("line", sorted({c for c in readme_blocks() + inline_commands() if "kgrank " in c[:20]}))
def test_every_flag_the_readme_names_is_in_help(line: str) -> None:
    path, command, flags = command_and_flags(line)
    help_text = command.get_help(command.context_class(command, info_name=f"kgrank {' '.join(path)}"))
    for flag in flags:
        assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", help_text), (
            f"README: `{line}`: {flag} is not in `kgrank {' '.join(path)} --help`"
        )


def test_every_python_module_and_make_target_the_readme_names_exists() -> None:
    text = README.read_text()
    makefile = (ROOT / "Makefile").read_text()
    for target in set(re.findall(r"\bmake ([a-z][\w-]*)", text)):
        assert re.search(rf"^{re.escape(target)}:", makefile, flags=re.MULTILINE), f"README: no make target {target}"
    for module, flags in re.findall(
        r"python -m ((?:benchmarks|training|kgrank)[\w.]*)((?: --?[\w-]+(?: [^\s`-]+)?)*)", text
    ):
        result = subprocess.run(
            [sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120, cwd=ROOT
        )
        assert result.returncode == 0, f"python -m {module} --help: {result.stderr[-500:]}"
        for flag in re.findall(r"--[\w-]+", flags):
            assert flag in result.stdout, f"README: python -m {module}: {flag} is not in its --help"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "kgrank.toml").write_text(SMALL_TRAINING)
    return tmp_path


@pytest.mark.real_data
def test_the_readme_command_blocks_run_in_order(workdir: Path, real_ml_dir: Path) -> None:
    environment = cli_environment({"KGRANK_CONFIG": str(workdir / "kgrank.toml")})
    ran: list[str] = []
    server: subprocess.Popen[bytes] | None = None
    port = free_port()
    try:
        for line in readme_blocks():
            if any(part in line for part in NOT_RUN):
                continue
            line = line.replace("../shared/data/ml-latest-small", str(real_ml_dir))
            line = line.replace("--base-model smollm2", "--base-model tiny")  # the fetched model: see NOT_RUN
            if line.startswith("curl "):
                assert server is not None, "the README sends /rank before it starts a server"
                answer = send_curl(line, port)
                assert answer["ranking"] and any(item["explanations"] for item in answer["ranking"]), answer
                ran.append(line)
                continue
            tokens = shlex.split(line)
            assert tokens[0] == "kgrank", f"README block command not covered by this test: {line}"
            if tokens[1] == "serve":
                server = start_server(tokens[1:], port, workdir, environment)
                ran.append(line)
                continue
            prerequisites(line, workdir, environment)
            run_kgrank(tokens[1:], workdir, environment, why=f"README: `{line}`")
            ran.append(line)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    assert any(c.startswith("kgrank serve") for c in ran) and any(c.startswith("curl") for c in ran)


def run_kgrank(arguments: list[str], workdir: Path, environment: dict[str, str], *, why: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kgrank", *arguments],
        cwd=workdir,
        env=environment,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, f"{why} failed:\n{result.stderr[-3000:]}"


def prerequisites(line: str, workdir: Path, environment: dict[str, str]) -> None:
    """Runs the README names in prose, before the blocks use them: `train retriever --model pop` and
    `train ensemble` (Retrievers and evaluation)."""
    needed = []
    if "runs/pop" in line and not (workdir / "runs" / "pop").exists():
        needed.append(["train", "retriever", "--data", "data/ml", "--model", "pop", "--out", "runs/pop"])
    if "runs/ensemble" in line and not (workdir / "runs" / "ensemble").exists():
        needed.append(["train", "ensemble", "--data", "data/ml", "--runs", "runs/lrurec", "--out", "runs/ensemble"])
    for arguments in needed:
        run_kgrank(arguments, workdir, environment, why=f"kgrank {' '.join(arguments)} (named in the README's prose)")


def start_server(arguments: list[str], port: int, workdir: Path, environment: dict[str, str]) -> subprocess.Popen:
    log = workdir / "serve.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "kgrank", *arguments, "--port", str(port)],
            cwd=workdir,
            env=environment,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_healthy(process, f"http://127.0.0.1:{port}", log, timeout_s=180)
    except AssertionError:
        process.terminate()
        raise
    return process


def send_curl(line: str, port: int) -> dict[str, object]:
    """The README's curl, sent to the test's port (curl itself need not be installed)."""
    tokens = shlex.split(line)
    url = next(t for t in tokens if "/rank" in t).replace("localhost:8080", f"127.0.0.1:{port}")
    body = tokens[tokens.index("-d") + 1]
    answer = httpx.post(f"http://{url}", content=body, headers={"content-type": "application/json"}, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()
