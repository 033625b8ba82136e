"""Write results so that a crash never leaves something half-written that looks complete, and a failed
command no empty folder of its own."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import string
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from services.core.errors import ConfigError

T = TypeVar("T")

# A staging name's random part (tempfile's alphabet and length, which earlier runs' names used too).
_RANDOM_CHARACTERS = string.ascii_lowercase + string.digits + "_"
_RANDOM_LENGTH = 8
_new_folders: list[Path] = []  # what `make_folder` created in this process, parents first


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
    make_folder(target.parent)
    _remove_abandoned_staging(target)
    staging = _new_sibling(target.parent, f".{target.name}.{os.getpid()}.", _make_directory)
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
    # The full pattern, random part included, keeps `run.500` from reading as `run`'s PID 500.
    random_part = f"[{re.escape(_RANDOM_CHARACTERS)}]{{{_RANDOM_LENGTH}}}"
    own = re.compile(rf"\.{re.escape(target.name)}\.(\d+)\.{random_part}\.partial")
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


def make_folder(path: Path) -> None:
    """`mkdir -p PATH`, remembering the folders it created for `remove_new_folders`."""
    missing = [folder for folder in (path, *path.parents) if not folder.exists()]
    path.mkdir(parents=True, exist_ok=True)
    _new_folders.extend(reversed(missing))


def remove_new_folders() -> None:
    """Remove the folders `make_folder` created in this process that are still empty (deepest first), so a
    failed command leaves no empty output folder behind. One that holds something stays: that is finished
    work (a multi-seed run's first seeds) or someone else's."""
    for folder in reversed(_new_folders):
        with contextlib.suppress(OSError):  # not empty, or already gone
            folder.rmdir()
    _new_folders.clear()


def new_partial_file(path: Path) -> tuple[int, Path]:
    """A new, empty temp file beside `path` (its folder made), open for writing: its descriptor and name."""
    make_folder(path.parent)
    return _new_sibling(path.parent, f".{path.name}.", _open_new_file)


def _new_sibling(folder: Path, prefix: str, create: Callable[[Path], T]) -> T:
    """`create(FOLDER/PREFIX<random>.partial)` under the first name no one holds yet.

    tempfile would do, but makes its files 0600 and its folders 0700, so results swapped in from them
    would be readable by their writer only; `create` gets the mode of an ordinary file or folder
    (0666 or 0777 less the umask)."""
    while True:
        random_part = "".join(secrets.choice(_RANDOM_CHARACTERS) for _ in range(_RANDOM_LENGTH))
        with contextlib.suppress(FileExistsError):
            return create(folder / f"{prefix}{random_part}.partial")


def _make_directory(path: Path) -> Path:
    path.mkdir(mode=0o777)
    return path


def _open_new_file(path: Path) -> tuple[int, Path]:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), path


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to a temp file beside `path`, fsync it, then rename it over `path`."""
    fd, tmp = new_partial_file(Path(path))
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
