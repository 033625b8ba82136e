"""Every command's --help shows all it says (any terminal width), and every usage error is one `error:` line.

The commands come from the click tree, so a new command or option is covered without being listed here.
Help and usage errors run in-process through `kgrank.cli.run` (the subprocess examples check `main`'s real
exit codes); a subprocess for each of the ~20 commands would cost a minute of imports.
"""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.core import TyperCommand, TyperGroup, TyperOption

from kgrank.cli import app, run
from tests.unit.test_cli import assert_one_error, kgrank

REPOSITORY = Path(__file__).resolve().parents[2]
# The commands whose work is torch's, which --threads limits.
TORCH_COMMANDS = [
    ("train", "retriever"),
    ("train", "ensemble"),
    ("train", "candidates"),
    ("train", "preference"),
    ("train", "ranker"),
    ("train", "bundle"),
    ("evaluate",),
    ("demo",),
    ("base-model", "fetch"),
]


Command = TyperCommand | TyperGroup


def walk(command: Command, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Command]]:
    """Every command and group under `command`, by the words that call it."""
    yield path, command
    if isinstance(command, TyperGroup):
        for name, sub in command.commands.items():
            yield from walk(sub, (*path, name))


COMMANDS = dict(walk(typer.main.get_command(app), ()))
LEAVES = [path for path, command in COMMANDS.items() if not isinstance(command, TyperGroup)]


def options(path: tuple[str, ...]) -> list[TyperOption]:
    return [param for param in COMMANDS[path].params if isinstance(param, TyperOption)]


def squashed(text: str) -> str:
    """Text without whitespace: what a help text still reads as after the formatter wrapped it anywhere."""
    return re.sub(r"\s+", "", text)


def run_in_process(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = run(args)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize("path", list(COMMANDS), ids=lambda path: " ".join(path) or "kgrank")
def test_help_shows_every_option_whole_and_every_help_text_in_a_narrow_terminal(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    status, shown, errors = run_in_process([*path, "--help"], capsys)
    assert status == 0, errors
    assert shown.startswith(f"Usage: {' '.join(('kgrank', *path))} ")
    command = COMMANDS[path]
    for param in options(path):
        for name in (*param.opts, *param.secondary_opts):
            assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", shown), f"{name} is cut or missing:\n{shown}"
        if param.help:  # markup would eat a `[@RANKER]`, a table would cut it
            assert squashed(param.help) in squashed(shown), f"{param.help!r} not in:\n{shown}"
    if command.help:
        assert squashed(command.help) in squashed(shown)
    for name in command.commands if isinstance(command, TyperGroup) else ():
        assert re.search(rf"^  {re.escape(name)}(\s|$)", shown, re.MULTILINE), f"command {name} missing:\n{shown}"
    assert "<bool>" not in shown and "list[" not in shown, shown  # flags take no value; lists say their syntax


def test_evaluate_help_shows_the_model_syntax(capsys: pytest.CaptureFixture[str]) -> None:
    _, shown, _ = run_in_process(["evaluate", "--help"], capsys)
    assert "--model NAME=RUNS[@RANKER]" in shown
    assert "llm=runs/ensemble@llm:models/ranker" in squashed(shown)


@pytest.mark.parametrize("path", LEAVES, ids=" ".join)
def test_unknown_option_is_one_error_line(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    status, shown, errors = run_in_process([*path, "--no-such-option"], capsys)
    assert (status, shown) == (2, "")
    assert errors.splitlines() == [errors.strip()]
    assert errors.startswith("error: no such option: --no-such-option")
    assert errors.strip().endswith(f"(see '{' '.join(('kgrank', *path))} --help')")


@pytest.mark.parametrize(
    "path", [path for path in LEAVES if any(param.required for param in options(path))], ids=" ".join
)
def test_missing_option_is_one_error_line(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    first = next(param for param in options(path) if param.required)
    status, shown, errors = run_in_process(list(path), capsys)
    assert (status, shown) == (2, "")
    assert errors.splitlines() == [errors.strip()]
    assert errors.startswith(f"error: missing option '{first.opts[0]}'")
    assert errors.strip().endswith(f"(see '{' '.join(('kgrank', *path))} --help')")


@pytest.mark.parametrize("path", TORCH_COMMANDS, ids=" ".join)
def test_torch_commands_take_threads(path: tuple[str, ...]) -> None:
    assert "--threads" in [name for param in options(path) for name in param.opts]


def test_threads_set_torch_s_intra_and_inter_op_threads() -> None:
    code = "from kgrank.options import use_threads; use_threads(1); import torch; "
    code += "print(torch.get_num_threads(), torch.get_num_interop_threads())"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert result.stdout.split() == ["1", "1"]


# `main` itself, in a subprocess: real exit codes, one line on stderr, nothing on stdout, no traceback.
USAGE_ERRORS = [
    (["data", "prepare", "--dataset", "movielens", "--raw", "x", "--out", "y"],
     r"^error: invalid value for '--dataset': 'movielens' is not one of 'ml-latest-small', .*"
     r"\(see 'kgrank data prepare --help'\)$"),
    (["graph", "paths", "--data", "x", "--user", "1", "--candidates", "1", "--max-hops", "two"],
     r"^error: invalid value for '--max-hops': .*integer.* \(see 'kgrank graph paths --help'\)$"),
    (["train", "retriever", "--data", "x", "--out", "y", "--threads", "0"],
     r"^error: invalid value for '--threads': .*greater than or equal to 1"),
    (["graph", "load"], r"^error: missing option '--data' \(see 'kgrank graph load --help'\)$"),
    (["graph", "load", "--data", "x", "--bogus"], r"^error: no such option: --bogus"),
    (["data", "prepare", "--dataset"], r"^error: option '--dataset' requires an argument$"),
    (["nope"], r"^error: no such command 'nope' \(see 'kgrank --help'\)$"),
    (["graph", "nope"], r"^error: no such command 'nope' \(see 'kgrank graph --help'\)$"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "pattern"), USAGE_ERRORS, ids=[" ".join(args) for args, _ in USAGE_ERRORS])
def test_usage_errors_are_one_line_and_status_2(args: list[str], pattern: str) -> None:
    result = kgrank(*args)
    assert_one_error(result, pattern)
    assert result.stderr.count("\n") == 1 and result.stdout == ""


@pytest.mark.parametrize(
    ("args", "usage"),
    [([], "kgrank"), (["data"], "kgrank data"), (["--help"], "kgrank"), (["evaluate", "--help"], "kgrank evaluate")],
)
def test_help_and_a_bare_group_print_help_and_succeed(args: list[str], usage: str) -> None:
    result = kgrank(*args)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith(f"Usage: {usage} ")


def test_the_command_line_starts_without_torch() -> None:
    code = "import sys, kgrank.cli; print(sorted({'torch', 'transformers'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert result.stdout.strip() == "[]"


def benchmarks_with_main() -> list[str]:
    names = []
    for source in sorted((REPOSITORY / "benchmarks").glob("*.py")):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        if any(isinstance(node, ast.FunctionDef) and node.name == "main" for node in tree.body):
            names.append(source.stem)
    return names


@pytest.mark.parametrize("name", benchmarks_with_main())
def test_every_benchmark_prints_help_without_servers(
    name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in ("KGRANK_NEO4J_URI", "KGRANK_REDIS_URL"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(sys, "argv", [f"{name}.py", "--help"])
    with pytest.raises(SystemExit) as exited:
        importlib.import_module(f"benchmarks.{name}").main()
    assert exited.value.code == 0, capsys.readouterr()
    assert capsys.readouterr().out.startswith("usage: ")
