"""Find ml-latest-small for demos: a local folder, else the official archive, else synthetic data."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Literal

from services.core.errors import DatasetNotFoundError, DownloadError
from services.graph_loader.download import fetch_dataset
from services.graph_loader.synthetic import generate, write_ml_latest_small

logger = logging.getLogger(__name__)

SampleSource = Literal["local", "download", "synthetic"]
_NEEDED = ("ratings.csv", "movies.csv")
# Where our machines keep the shared copy: ../shared/data beside the repository.
SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def _holds_sample(folder: Path) -> bool:
    return all((folder / name).is_file() for name in _NEEDED)


def locate_sample_data(
    explicit: Path | None, workdir: Path, *, download_url: str | None = None
) -> tuple[Path, SampleSource]:
    """The ml-latest-small folder to use and where it came from.

    `explicit` (--raw) must hold the files: a folder the user named is never silently swapped. Without
    it: $KGRANK_DATA_DIR (the folder itself or its ml-latest-small/), then ../shared/data/ml-latest-small,
    then a download into WORKDIR/raw, then a synthetic dataset.
    """
    if explicit is not None:
        if not _holds_sample(explicit):
            raise DatasetNotFoundError(f"{explicit}: no ml-latest-small here (needs {' and '.join(_NEEDED)})")
        return explicit, "local"
    env = os.environ.get("KGRANK_DATA_DIR")
    candidates: list[Path] = []
    if env:
        candidates += [Path(env), Path(env) / "ml-latest-small"]
    candidates.append(SHARED_DATA / "ml-latest-small")
    for folder in candidates:
        if _holds_sample(folder):
            return folder, "local"
    downloaded = workdir / "raw" / "ml-latest-small"
    if _holds_sample(downloaded):
        return downloaded, "download"
    try:
        fetch_dataset("ml-latest-small", downloaded, url=download_url)
        return downloaded, "download"
    except DownloadError as e:
        logger.warning("no local ml-latest-small and no download (%s)", e)
    synthetic = workdir / "raw" / "synthetic-ml-latest-small"
    write_ml_latest_small(generate(users=200, movies=400, seed=11), synthetic)
    return synthetic, "synthetic"
