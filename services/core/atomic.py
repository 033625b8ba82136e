"""Write results so that a crash never leaves something half-written that looks complete."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from services.core.errors import ConfigError


def check_replaceable(target: Path, *, marker: str) -> None:
    """Refuse to replace anything but a new or empty folder, or one kgrank wrote (it holds `marker`).

    Without this, `--out ~/work` or `--out /etc/passwd` would be swapped for a dataset folder.
    """
    target = Path(target)
    if not target.exists() and not target.is_symlink():
        return
    if not target.is_dir() or target.is_symlink():
        raise ConfigError(f"{target} exists and is not a folder; choose a new or empty folder")
    if any(target.iterdir()) and not (target / marker).is_file():
        raise ConfigError(
            f"{target} is not empty and was not written by kgrank (no {marker}); "
            "choose a new or empty folder, it would be replaced"
        )


@contextlib.contextmanager
def atomic_directory(target: Path, *, marker: str) -> Iterator[Path]:
    """Yield a fresh sibling temp folder; on success it replaces `target`, on failure it is removed.

    `target` must pass `check_replaceable` with `marker`, the file every complete result holds. A run
    SIGKILLed before the swap leaves the previous `target` as it was and a staging folder named after
    its process; the next run for the same target removes those of dead processes.
    """
    target = Path(target)
    check_replaceable(target, marker=marker)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_staging(target)
    previous = target.with_name(f".{target.name}.previous")
    if previous.is_dir() and not target.exists():  # killed between the two renames below: put it back
        previous.rename(target)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".partial", dir=target.parent))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(previous, ignore_errors=True)
    if target.exists():
        target.rename(previous)
    staging.rename(target)
    shutil.rmtree(previous, ignore_errors=True)


def _remove_abandoned_staging(target: Path) -> None:
    for staging in target.parent.glob(f".{glob.escape(target.name)}.*.partial"):
        pid = staging.name[len(target.name) + 2 :].split(".", 1)[0]
        if staging.is_dir() and pid.isdigit() and not _process_alive(int(pid)):
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
