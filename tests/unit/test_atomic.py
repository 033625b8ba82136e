"""The atomic folder swap: what a SIGKILL at each point leaves, and how the next run tidies it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.core.atomic import atomic_directory
from services.core.errors import ConfigError


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def write_result(target: Path, text: str) -> None:
    with atomic_directory(target, marker="done") as staging:
        (staging / "result").write_text(text)
        (staging / "done").write_text("")


def test_staging_of_dead_runs_is_removed_and_a_live_run_s_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "run"
    abandoned = tmp_path / f".run.{dead_pid()}.x1.partial"
    live = tmp_path / f".run.{os.getpid()}.x2.partial"
    other = tmp_path / f".runs.{dead_pid()}.x3.partial"  # another target's
    for folder in (abandoned, live, other):
        folder.mkdir()
    write_result(target, "new")
    assert (target / "result").read_text() == "new"
    assert not abandoned.exists() and live.exists() and other.exists()


def test_a_kill_between_the_two_renames_gets_the_previous_result_back(tmp_path: Path) -> None:
    target = tmp_path / "run"
    write_result(target, "old")
    target.rename(tmp_path / ".run.previous")  # what a kill right after the first rename leaves
    with pytest.raises(RuntimeError), atomic_directory(target, marker="done"):
        raise RuntimeError("killed again")
    assert (target / "result").read_text() == "old"


def test_only_empty_folders_or_kgrank_s_own_results_are_replaced(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    write_result(tmp_path / "empty", "fine")
    write_result(tmp_path / "empty", "again")
    assert (tmp_path / "empty" / "result").read_text() == "again"
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "notes").write_text("keep")
    with pytest.raises(ConfigError, match="not written by kgrank"):
        write_result(tmp_path / "theirs", "no")
    (tmp_path / "link").symlink_to(tmp_path / "empty")
    with pytest.raises(ConfigError, match="is not a folder"):
        write_result(tmp_path / "link", "no")
    assert (tmp_path / "theirs" / "notes").read_text() == "keep"
