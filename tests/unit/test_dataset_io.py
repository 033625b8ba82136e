from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from services.core.atomic import atomic_directory
from services.core.errors import ConfigError, DatasetFormatError, DatasetNotFoundError
from services.graph_loader.dataset import ProcessedDataset
from services.graph_loader.prepare import prepare_dataset
from services.graph_loader.synthetic import SyntheticCatalogue
from tests.fixtures.formats import write_generic, write_ml100k


@pytest.fixture
def prepared(ml_raw: Path, tmp_path: Path) -> tuple[ProcessedDataset, Path]:
    out = tmp_path / "data"
    return prepare_dataset("ml-latest-small", ml_raw, out), out


def test_round_trip(prepared: tuple[ProcessedDataset, Path]) -> None:
    dataset, out = prepared
    loaded = ProcessedDataset.load(out)
    assert loaded.manifest == dataset.manifest
    assert loaded.schema == dataset.schema
    assert loaded.users == dataset.users
    assert loaded.items == dataset.items
    assert loaded.stats == dataset.stats
    pd.testing.assert_frame_equal(loaded.interactions, dataset.interactions, check_dtype=False)
    stats = json.loads((out / "stats.json").read_text())
    assert {"users", "items", "interactions"} <= stats.keys()


def test_data_hash_is_stable_and_content_sensitive(ml_raw: Path, tmp_path: Path) -> None:
    first = prepare_dataset("ml-latest-small", ml_raw, tmp_path / "a").manifest.data_hash
    second = prepare_dataset("ml-latest-small", ml_raw, tmp_path / "b").manifest.data_hash
    third = prepare_dataset("ml-latest-small", ml_raw, tmp_path / "c", min_interactions=12).manifest.data_hash
    assert first == second != third
    assert len(first) == 64


def test_failed_write_leaves_previous_dataset_intact(prepared: tuple[ProcessedDataset, Path]) -> None:
    _, out = prepared
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def interrupted_write() -> None:
        with atomic_directory(out, markers=("manifest.json",)) as staging:
            (staging / "users.csv").write_text("half")
            raise RuntimeError("killed mid-way")

    with pytest.raises(RuntimeError):
        interrupted_write()
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in out.parent.iterdir() if p.name.endswith(".partial")] == []


@pytest.mark.parametrize("kind", ["file", "foreign folder"])
def test_prepare_never_replaces_what_kgrank_did_not_write(ml_raw: Path, tmp_path: Path, kind: str) -> None:
    out = tmp_path / "out"
    if kind == "file":
        out.write_text("someone's file")
    else:
        out.mkdir()
        (out / "notes.txt").write_text("someone's notes")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(ConfigError, match="choose a new or empty folder"):
        prepare_dataset("ml-latest-small", ml_raw, out)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_prepare_replaces_its_own_earlier_output_and_fills_an_empty_folder(ml_raw: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    first = prepare_dataset("ml-latest-small", ml_raw, out).manifest.data_hash
    built = [out / "graph.sqlite", out / "cache" / "paths.jsonl.gz"]  # what later commands put beside the data
    built[1].parent.mkdir()
    for path in built:
        path.write_text("built from the data")

    again = prepare_dataset("ml-latest-small", ml_raw, out).manifest.data_hash
    assert again == first and all(path.is_file() for path in built)  # same data: kept, with what was built
    assert ProcessedDataset.load(out).manifest.data_hash == first

    assert prepare_dataset("ml-latest-small", ml_raw, out, min_interactions=12).manifest.data_hash != first
    assert ProcessedDataset.load(out).manifest.data_hash != first
    assert not any(path.exists() for path in built)  # new data: built files of the old data are gone
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_load_rejects_non_dataset_and_bad_files(prepared: tuple[ProcessedDataset, Path], tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"not a processed dataset.*kgrank data prepare"):
        ProcessedDataset.load(tmp_path / "nothing")
    _, out = prepared
    manifest = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps(manifest | {"format_version": 99}))
    with pytest.raises(DatasetFormatError, match="dataset format 99"):
        ProcessedDataset.load(out)
    (out / "manifest.json").write_text("{broken")
    with pytest.raises(DatasetFormatError, match=r"manifest\.json: invalid content"):
        ProcessedDataset.load(out)


def test_same_events_give_the_same_sequences_in_every_format(
    ml_raw: Path, tmp_path: Path, catalogue: SyntheticCatalogue
) -> None:
    """The readers differ, the preprocessing is shared: equal events must give equal splits."""
    ml = prepare_dataset("ml-latest-small", ml_raw, tmp_path / "ml")
    ml100k = prepare_dataset("ml-100k", write_ml100k(catalogue, tmp_path / "raw100k"), tmp_path / "100k")
    generic = prepare_dataset("generic", write_generic(catalogue, tmp_path / "rawgen"), tmp_path / "gen")
    columns = ["user", "item", "timestamp", "split"]
    pd.testing.assert_frame_equal(ml.interactions[columns], ml100k.interactions[columns])
    assert [i.id for i in ml.items] == [i.id for i in ml100k.items] == [i.id for i in generic.items]
    assert [i.title for i in ml.items] == [i.title for i in ml100k.items]
    # generic user ids are "u<n>": string order differs from numeric order, so compare per raw id
    by_user = {ml.user_id(u): list(g["item"]) for u, g in ml.interactions.groupby("user")}
    assert {
        generic.user_id(u).removeprefix("u"): list(g["item"]) for u, g in generic.interactions.groupby("user")
    } == by_user
