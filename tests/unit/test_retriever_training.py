from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from services.core.errors import DatasetError, DatasetFormatError, ModelError, ModelNotFoundError
from services.graph_loader.dataset import ProcessedDataset
from services.graph_loader.prepare import prepare_dataset
from services.graph_loader.sequences import user_sequences
from services.ranker.candidates import CandidateSet
from services.ranker.retriever.registry import load_checkpoint
from services.ranker.retriever.retrieve import rank_all_items
from training.retriever import HISTORY_TIMINGS, RetrieverConfig, train_retriever, training_windows

TINY = {"dim": 16, "max_len": 16, "batch_size": 8, "max_epochs": 3, "patience": 2}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory, ml_raw: Path) -> ProcessedDataset:
    return prepare_dataset("ml-latest-small", ml_raw, tmp_path_factory.mktemp("retr") / "data")


def test_windows_label_every_train_event_once(dataset: ProcessedDataset) -> None:
    sequences = user_sequences(dataset)
    windows = training_windows(sequences, max_len=5)
    assert max(len(w) for w in windows) == 6
    labels = Counter(int(i) for w in windows for i in w[1:])
    expected = Counter(int(i) for u in range(1, sequences.users + 1) for i in sequences.train(u)[1:])
    assert labels == expected


@pytest.mark.parametrize("model", ["lrurec", "sasrec", "pop"])
def test_training_writes_a_complete_run(dataset: ProcessedDataset, tmp_path: Path, model: str) -> None:
    result = train_retriever(dataset, RetrieverConfig(model=model, **TINY), tmp_path, progress=False)
    assert {p.name for p in tmp_path.iterdir()} >= {
        "checkpoint.pt",
        "training.json",
        "candidates-val.npz",
        "candidates-test.npz",
    }
    assert 0 <= result.best_val_recall10 <= 1
    for split in ("val", "test"):
        candidates = CandidateSet.load(tmp_path / f"candidates-{split}.npz")
        assert candidates.items.shape == (len(dataset.users), 50)
        candidates.check_matches(
            dataset=dataset.name,
            data_hash=dataset.manifest.data_hash,
            users=len(dataset.users),
            items=len(dataset.items),
        )
        finite = np.isfinite(candidates.scores)
        assert (candidates.items[~finite] == 0).all() and (candidates.items[finite] > 0).all()
        assert all(
            (np.diff(row[ok]) <= 0).all() and ok[: ok.sum()].all()
            for row, ok in zip(candidates.scores, finite, strict=True)
        )
        sequences = user_sequences(dataset)
        for row, user in zip(candidates.items, candidates.users, strict=True):
            assert not set(row.tolist()) & set(sequences.history(int(user), split).tolist())
    restored, meta = load_checkpoint(tmp_path / "checkpoint.pt")
    assert meta["data_hash"] == dataset.manifest.data_hash
    again = rank_all_items(restored, user_sequences(dataset), "test", max_len=16, top_k=50)
    assert np.array_equal(again.top_items, CandidateSet.load(tmp_path / "candidates-test.npz").items)


def test_same_seed_same_candidates(dataset: ProcessedDataset, tmp_path: Path) -> None:
    for run in ("a", "b"):
        train_retriever(dataset, RetrieverConfig(seed=3, **TINY), tmp_path / run, progress=False)
    first, second = (CandidateSet.load(tmp_path / run / "candidates-test.npz") for run in ("a", "b"))
    assert np.array_equal(first.items, second.items)


def test_candidates_refuse_another_dataset(dataset: ProcessedDataset, tmp_path: Path) -> None:
    train_retriever(dataset, RetrieverConfig(model="pop"), tmp_path, progress=False)
    candidates = CandidateSet.load(tmp_path / "candidates-val.npz")
    with pytest.raises(DatasetError, match=r"candidates were computed on .* retrain the retriever"):
        candidates.check_matches(
            dataset=dataset.name, data_hash="0" * 64, users=len(dataset.users), items=len(dataset.items)
        )
    with pytest.raises(DatasetError, match="outside"):
        candidates.check_matches(
            dataset=dataset.name, data_hash=dataset.manifest.data_hash, users=3, items=len(dataset.items)
        )


def test_bad_files(tmp_path: Path) -> None:
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(DatasetFormatError, match="not a kgrank candidates file"):
        CandidateSet.load(tmp_path / "junk.npz")
    with pytest.raises(ModelNotFoundError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="not a usable retriever checkpoint"):
        load_checkpoint(tmp_path / "broken.pt")


@pytest.mark.parametrize("kind", ["ml-100k", "amazon", "generic"])
def test_every_dataset_format_trains_and_evaluates(tmp_path: Path, catalogue, kind: str) -> None:
    from services.ranker.ranking import RetrieverOrder
    from tests.fixtures.formats import write_amazon, write_generic, write_ml100k
    from training.evaluation.evaluate import evaluate
    from training.evaluation.harness import ModelSpec

    writer = {"ml-100k": write_ml100k, "amazon": write_amazon, "generic": write_generic}[kind]
    data = prepare_dataset(kind, writer(catalogue, tmp_path / "raw"), tmp_path / "data")
    for model in ("pop", "lrurec"):
        train_retriever(
            data, RetrieverConfig(model=model, **TINY | {"max_epochs": 1}), tmp_path / model, progress=False
        )
    report = evaluate(
        data,
        [ModelSpec(m, [tmp_path / m], RetrieverOrder()) for m in ("pop", "lrurec")],
        split="val",
        out=tmp_path / "eval",
        command="test",
        resamples=100,
        progress=False,
    )
    assert report.users == len(data.users)
    assert report.paper == {}  # no paper rows for val
    assert (tmp_path / "eval" / "metrics.md").is_file()


def test_candidates_recomputed_from_a_checkpoint(dataset: ProcessedDataset, tmp_path: Path, ml_raw: Path) -> None:
    from training.retriever import recompute_candidates

    train_retriever(dataset, RetrieverConfig(**TINY | {"top_k": 20}), tmp_path, progress=False)
    before = CandidateSet.load(tmp_path / "candidates-test.npz")
    recompute_candidates(dataset, tmp_path, top_k=40)
    after = CandidateSet.load(tmp_path / "candidates-test.npz")
    assert after.items.shape[1] == 40
    assert np.array_equal(after.items[:, :20], before.items)
    other = prepare_dataset("ml-latest-small", ml_raw, tmp_path / "other", min_interactions=12)
    with pytest.raises(DatasetError, match="not on this version of"):
        recompute_candidates(other, tmp_path, top_k=40)


def test_sampled_softmax_over_every_item_is_the_full_softmax() -> None:
    """With every item drawn once, the positive (masked among the drawn) against the rest is exactly the softmax over
    the catalogue; padding positions count in neither."""
    from services.ranker.retriever.registry import build_retriever
    from training.retriever import NextItemLoss

    torch.manual_seed(0)
    model = build_retriever("lrurec", num_items=30, config={"dim": 16, "blocks": 1, "dropout": 0.0}).eval()
    inputs = torch.tensor([[0, 0, 3, 7, 9], [1, 2, 3, 4, 5]])
    labels = torch.tensor([[0, 3, 7, 9, 30], [2, 3, 4, 5, 6]])
    loss = NextItemLoss(model)
    full = loss(inputs, labels, None)
    sampled = loss(inputs, labels, torch.randperm(30) + 1)
    assert torch.allclose(full, sampled, atol=1e-6)
    assert not torch.allclose(full, loss(inputs, labels, torch.tensor([1, 2, 3])))


def test_sampled_softmax_training_learns_and_records_its_loss(dataset: ProcessedDataset, tmp_path: Path) -> None:
    config = RetrieverConfig(seed=1, negatives=64, **TINY)
    result = train_retriever(dataset, config, tmp_path / "a", progress=False)
    popularity = train_retriever(dataset, RetrieverConfig(model="pop"), tmp_path / "pop", progress=False)
    assert result.config.negatives == 64
    assert json.loads((tmp_path / "a" / "training.json").read_text())["config"]["negatives"] == 64
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert result.best_val_recall10 > 0.5 * popularity.best_val_recall10
    again = train_retriever(dataset, config, tmp_path / "b", progress=False)

    def without_time(history: list[dict[str, float]]) -> list[dict[str, float]]:
        return [{k: v for k, v in epoch.items() if k not in HISTORY_TIMINGS} for epoch in history]

    assert without_time(again.history) == without_time(result.history)  # the draws follow the seed


def test_an_estimate_of_the_whole_run_is_logged_after_its_first_batches(
    dataset: ProcessedDataset, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging
    import math

    caplog.set_level(logging.INFO, logger="training.progress")
    train_retriever(dataset, RetrieverConfig(**TINY), tmp_path, progress=False)
    batches = math.ceil(len(training_windows(user_sequences(dataset), max_len=16)) / TINY["batch_size"])
    (estimate,) = [r.getMessage() for r in caplog.records if "estimate:" in r.getMessage()]
    assert estimate.startswith("lrurec seed 0: estimate: at most ~")
    assert f"3 epochs × {batches} batches + 3 validations of {len(dataset.users)} users" in estimate
    assert "fewer when val R@10 has not improved for 2 epochs" in estimate
    # the first batches (five, or fewer if they are slow) and one ranking batch of val users
    assert f" and {min(256, len(dataset.users))} val users)" in estimate
