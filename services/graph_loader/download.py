"""Fetch official dataset archives when a network is reachable (MovieLens zips, Amazon SNAP files)."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from services.core.atomic import new_partial_file
from services.core.errors import DownloadError
from services.graph_loader.readers.amazon import SNAP_BASE_URL, AmazonReader
from services.graph_loader.readers.movielens import MovieLens100KReader, MovieLensLatestReader

_TIMEOUT_S = 30


def download_file(url: str, destination: Path) -> Path:
    """Stream `url` to `destination` through a temp file; a failed download leaves nothing behind."""
    fd, tmp = new_partial_file(destination)
    try:
        with (
            urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response,  # noqa: S310 - http(s) URLs we build
            open(fd, "wb") as handle,
            tqdm(
                total=int(response.headers.get("Content-Length") or 0) or None,
                unit="B",
                unit_scale=True,
                desc=f"downloading {destination.name}",
            ) as bar,
        ):
            for chunk in iter(lambda: response.read(1 << 16), b""):
                handle.write(chunk)
                bar.update(len(chunk))
        tmp.replace(destination)
    except (urllib.error.URLError, TimeoutError, OSError) as e:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise DownloadError(f"cannot download {url}: {e}", url=url) from e
    return destination


def download_zip(url: str, raw_dir: Path) -> Path:
    """Download a zip and extract its files flat into `raw_dir` (the archive's top folder is dropped)."""
    with tempfile.TemporaryDirectory() as scratch:
        archive = download_file(url, Path(scratch) / "archive.zip")
        try:
            with zipfile.ZipFile(archive) as bundle:
                raw_dir.mkdir(parents=True, exist_ok=True)
                for member in bundle.infolist():
                    if member.is_dir():
                        continue
                    name = PurePosixPath(member.filename).name
                    if not name or name.startswith("."):
                        continue
                    with bundle.open(member) as source, (raw_dir / name).open("wb") as target:
                        shutil.copyfileobj(source, target)
        except zipfile.BadZipFile as e:
            raise DownloadError(f"{url} is not a zip archive: {e}", url=url) from e
    return raw_dir


def fetch_dataset(kind: str, raw_dir: Path, *, category: str | None = None, url: str | None = None) -> None:
    """Download the official files of a dataset kind into `raw_dir` (`url` overrides the source)."""
    if kind == MovieLensLatestReader.kind:
        download_zip(url or MovieLensLatestReader.archive_url, raw_dir)
    elif kind == MovieLens100KReader.kind:
        download_zip(url or MovieLens100KReader.archive_url, raw_dir)
    elif kind == AmazonReader.kind:
        for file_url in AmazonReader(category=category).download_urls(url or SNAP_BASE_URL):
            download_file(file_url, raw_dir / PurePosixPath(file_url).name)
    else:
        raise DownloadError(f"{kind} datasets cannot be downloaded; put the files in {raw_dir}")
