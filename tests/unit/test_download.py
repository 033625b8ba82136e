from __future__ import annotations

import functools
import http.server
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.core.errors import DatasetNotFoundError, DownloadError
from services.graph_loader import sample_data
from services.graph_loader.download import download_file
from services.graph_loader.prepare import prepare_dataset


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, ml_raw: Path) -> Iterator[str]:
    """A loopback HTTP server with the synthetic dataset zipped like GroupLens' archive."""
    root = tmp_path_factory.mktemp("www")
    with zipfile.ZipFile(root / "ml-latest-small.zip", "w") as bundle:
        for path in sorted(ml_raw.iterdir()):
            bundle.write(path, f"ml-latest-small/{path.name}")
    (root / "not-a-zip.zip").write_text("<html>moved</html>")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_prepare_downloads_missing_files(server: str, tmp_path: Path, ml_raw: Path) -> None:
    raw = tmp_path / "raw"
    dataset = prepare_dataset(
        "ml-latest-small", raw, tmp_path / "out", download=True, download_url=f"{server}/ml-latest-small.zip"
    )
    assert sorted(p.name for p in raw.iterdir()) == sorted(p.name for p in ml_raw.iterdir())
    assert dataset.stats.interactions > 0


def test_without_download_flag_missing_files_stay_an_error(tmp_path: Path) -> None:
    from services.core.errors import DatasetNotFoundError

    with pytest.raises(DatasetNotFoundError):
        prepare_dataset("ml-latest-small", tmp_path / "raw", tmp_path / "out")


def test_failed_downloads_leave_nothing(server: str, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match=r"cannot download .*/missing\.csv"):
        download_file(f"{server}/missing.csv", tmp_path / "missing.csv")
    with pytest.raises(DownloadError, match="is not a zip archive"):
        prepare_dataset(
            "ml-latest-small", tmp_path / "raw", tmp_path / "out", download=True, download_url=f"{server}/not-a-zip.zip"
        )
    assert list(tmp_path.rglob("*.partial")) == []
    assert not (tmp_path / "out").exists()


def test_generic_data_cannot_be_downloaded(tmp_path: Path) -> None:
    from services.graph_loader.download import fetch_dataset

    with pytest.raises(DownloadError, match="generic datasets cannot be downloaded"):
        fetch_dataset("generic", tmp_path)


class TestSampleData:
    def test_explicit_folder_wins(self, ml_raw: Path, tmp_path: Path) -> None:
        assert sample_data.locate_sample_data(ml_raw, tmp_path) == (ml_raw, "local")

    def test_explicit_folder_without_the_files_is_an_error(self, tmp_path: Path) -> None:
        with pytest.raises(DatasetNotFoundError, match=r"no ml-latest-small here \(needs ratings\.csv and movies"):
            sample_data.locate_sample_data(tmp_path, tmp_path / "work")

    def test_env_folder(self, ml_raw: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("KGRANK_DATA_DIR", str(ml_raw))
        assert sample_data.locate_sample_data(None, tmp_path) == (ml_raw, "local")

    def test_download_then_synthetic(self, server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("KGRANK_DATA_DIR", raising=False)
        monkeypatch.setattr(sample_data, "SHARED_DATA", tmp_path / "no-shared")
        folder, source = sample_data.locate_sample_data(
            None, tmp_path / "a", download_url=f"{server}/ml-latest-small.zip"
        )
        assert source == "download" and (folder / "ratings.csv").is_file()
        folder, source = sample_data.locate_sample_data(None, tmp_path / "b", download_url=f"{server}/nothing.zip")
        assert source == "synthetic"
        assert prepare_dataset("ml-latest-small", folder, tmp_path / "out").stats.users == 200
