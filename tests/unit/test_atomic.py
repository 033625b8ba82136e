"""The atomic folder swap: what a SIGKILL at each point leaves, and how the next run tidies it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.core.atomic import atomic_directory, check_replaceable
from services.core.errors import ConfigError


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def write_result(target: Path, text: str, markers: tuple[str, ...] = ("done",)) -> None:
    with atomic_directory(target, markers=markers) as staging:
        (staging / "result").write_text(text)
        for marker in markers:
            (staging / marker).write_text("")


def test_staging_of_dead_runs_is_removed_and_a_live_run_s_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "run"
    other = tmp_path / f".runs.{dead_pid()}.abcd1234.partial"  # another target's
    sibling = tmp_path / f".run.{dead_pid()}.{os.getpid()}.abcd1234.partial"  # `run.<pid>`'s, live: not `run`'s
    abandoned = tmp_path / f".run.{dead_pid()}.abcd1234.partial"
    live = tmp_path / f".run.{os.getpid()}.efgh5678.partial"
    for folder in (abandoned, live, other, sibling):
        folder.mkdir()
    write_result(target, "new")
    assert (target / "result").read_text() == "new"
    assert not abandoned.exists() and live.exists() and other.exists() and sibling.exists()


@pytest.mark.parametrize("cli_made_it", [False, True])
def test_a_kill_between_the_two_renames_gets_the_previous_result_back(tmp_path: Path, cli_made_it: bool) -> None:
    target = tmp_path / "run"
    write_result(target, "old")
    target.rename(tmp_path / ".run.previous")  # what a kill right after the first rename leaves
    if cli_made_it:
        target.mkdir()  # an empty --out made before the run starts
    check_replaceable(target, markers=("done",))  # what every command calls first
    assert (target / "result").read_text() == "old"
    with pytest.raises(RuntimeError), atomic_directory(target, markers=("done",)):
        raise RuntimeError("killed again")
    assert (target / "result").read_text() == "old"


def test_only_empty_folders_or_kgrank_s_own_results_are_replaced(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    write_result(tmp_path / "empty", "fine")
    write_result(tmp_path / "empty", "again")
    assert (tmp_path / "empty" / "result").read_text() == "again"
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "notes").write_text("keep")
    with pytest.raises(ConfigError, match="is not an earlier output of this command"):
        write_result(tmp_path / "theirs", "no")
    write_result(tmp_path / "other-kind", "x", markers=("done",))
    with pytest.raises(ConfigError, match=r"not an earlier output of this command \(no done and more\)"):
        write_result(tmp_path / "other-kind", "no", markers=("done", "more"))
    (tmp_path / "link").symlink_to(tmp_path / "empty")
    with pytest.raises(ConfigError, match="is not a folder"):
        write_result(tmp_path / "link", "no")
    assert (tmp_path / "theirs" / "notes").read_text() == "keep"


def test_the_current_folder_or_one_above_it_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inner = tmp_path / "work" / "inner"
    inner.mkdir(parents=True)
    monkeypatch.chdir(inner)
    for target in (Path("."), Path(".."), inner):
        with pytest.raises(ConfigError, match="holds the current folder"):
            write_result(target, "no")
    write_result(Path("out"), "fine")  # relative paths below it are fine
    assert (inner / "out" / "result").read_text() == "fine"
