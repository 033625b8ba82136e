"""Write results so that a crash never leaves something half-written that looks complete."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from services.core.errors import ConfigError


class KeepExisting(Exception):  # noqa: N818 - a signal, not an error
    """Raised inside `atomic_directory`: discard the staging folder and leave the target as it is."""


def check_replaceable(target: Path, *, markers: tuple[str, ...]) -> None:
    """Refuse to replace anything but a new or empty folder, or an earlier output of the same kind: one
    that holds every file of `markers`. Without this, `--out ~/work` or `--out /etc/passwd` would be
    swapped for a dataset folder. First puts back an output a kill left aside (see `atomic_directory`).
    """
    target = _absolute(target)
    _recover_previous(target)
    if target == Path.cwd() or target in Path.cwd().parents:
        raise ConfigError(f"{target} holds the current folder; run from outside it or choose another folder")
    if not target.exists() and not target.is_symlink():
        return
    if target.is_symlink() or not target.is_dir():
        raise ConfigError(f"{target} exists and is not a folder; choose a new or empty folder")
    if any(target.iterdir()) and not all((target / marker).is_file() for marker in markers):
        raise ConfigError(
            f"{target} is not empty and is not an earlier output of this command (no {' and '.join(markers)}); "
            "choose a new or empty folder, it would be replaced"
        )


@contextlib.contextmanager
def atomic_directory(target: Path, *, markers: tuple[str, ...]) -> Iterator[Path]:
    """Yield a fresh sibling temp folder; on success it replaces `target`, on failure it is removed.

    `target` must pass `check_replaceable`; `markers` are files every complete result holds. A run
    SIGKILLed before the swap leaves the previous `target` as it was and a staging folder named after
    its process; the next run for the same target removes those of dead processes. Killed between the
    swap's two renames, it leaves the previous output at `.NAME.previous`, which the next run puts back.
    """
    target = _absolute(target)
    check_replaceable(target, markers=markers)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_staging(target)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".partial", dir=target.parent))
    try:
        yield staging
    except KeepExisting:
        shutil.rmtree(staging, ignore_errors=True)
        return
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    previous = _previous(target)
    shutil.rmtree(previous, ignore_errors=True)
    if target.exists():
        target.rename(previous)
    staging.rename(target)
    shutil.rmtree(previous, ignore_errors=True)


def _absolute(target: Path) -> Path:
    # Not resolve(): a symlinked target must stay visible as one. abspath gives `--out .` a real name.
    return Path(os.path.abspath(target))


def _previous(target: Path) -> Path:
    return target.with_name(f".{target.name}.previous")


def _recover_previous(target: Path) -> None:
    previous = _previous(target)
    if not previous.is_dir():
        return
    if target.is_dir() and not target.is_symlink() and not any(target.iterdir()):
        target.rmdir()  # an empty folder the CLI made before the put-back
    if not target.exists() and not target.is_symlink():
        previous.rename(target)


def _remove_abandoned_staging(target: Path) -> None:
    # tempfile's random part: 8 of [a-z0-9_]. The full pattern keeps `run.500` from reading as `run`'s PID 500.
    own = re.compile(rf"\.{re.escape(target.name)}\.(\d+)\.[a-z0-9_]{{8}}\.partial")
    for staging in target.parent.iterdir():
        match = own.fullmatch(staging.name)
        if match and staging.is_dir() and not _process_alive(int(match.group(1))):
            shutil.rmtree(staging, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to a temp file beside `path`, fsync it, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path: Path, payload: Any) -> None:
    """Atomically write pretty, key-sorted JSON (stable bytes for the same content)."""
    atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
