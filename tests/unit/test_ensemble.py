"""Ensembles of retriever runs: a run like any other, scoring the mean of the members' log-probabilities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from services.core.errors import ConfigError, DatasetError
from services.graph_loader.dataset import ProcessedDataset
from services.graph_loader.prepare import prepare_dataset
from services.graph_loader.sequences import user_sequences
from services.graph_loader.synthetic import generate, write_ml_latest_small
from services.ranker.candidates import CandidateSet
from services.ranker.retriever.live import LiveRetriever
from services.ranker.retriever.registry import load_checkpoint
from services.ranker.retriever.retrieve import left_pad
from training.ensemble import build_ensemble
from training.retriever import RetrieverConfig, train_retriever

TINY = {"dim": 16, "max_len": 16, "batch_size": 8, "max_epochs": 2, "patience": 2}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, ml_raw: Path) -> tuple[ProcessedDataset, Path]:
    work = tmp_path_factory.mktemp("ensemble")
    dataset = prepare_dataset("ml-latest-small", ml_raw, work / "data")
    for seed in (0, 1):
        train_retriever(
            dataset, RetrieverConfig(model="lrurec", seed=seed, **TINY), work / "lru" / f"seed-{seed}", progress=False
        )
    train_retriever(
        dataset,
        RetrieverConfig(model="sasrec", max_len=8, **{k: v for k, v in TINY.items() if k != "max_len"}),
        work / "sas",
        progress=False,
    )
    train_retriever(dataset, RetrieverConfig(model="pop"), work / "pop", progress=False)
    return dataset, work


def test_the_ensemble_is_a_run_that_averages_its_members_log_probabilities(
    trained: tuple[ProcessedDataset, Path],
) -> None:
    dataset, work = trained
    out = work / "ensemble"
    record = build_ensemble(dataset, [work / "lru", work / "sas"], out)
    assert len(record["members"]) == 3 and {"val", "test"} <= set(record["metrics_over_all_items"])
    ensemble, saved = load_checkpoint(out / "checkpoint.pt")
    assert saved["config"]["model"] == "ensemble" and saved["config"]["max_len"] == 16
    members = [
        load_checkpoint(run / "checkpoint.pt")[0] for run in (work / "lru/seed-0", work / "lru/seed-1", work / "sas")
    ]
    sequences = user_sequences(dataset)
    histories = [sequences.history(u, "test") for u in (1, 2, 3)]
    batch = left_pad(histories, 16)
    with torch.inference_mode():
        expected = (
            sum(
                torch.log_softmax(m.score_next(batch[:, -length:]), dim=-1)
                for m, length in zip(members, (16, 16, 8), strict=True)
            )
            / 3
        )
        assert torch.allclose(ensemble.score_next(batch), expected, atol=1e-5)

    candidates = CandidateSet.load(out / "candidates-test.npz")
    assert candidates.header.retriever == "ensemble"
    row = int(np.flatnonzero(candidates.users == 1)[0])
    top = candidates.valid(row, 20)
    scores = expected[0].numpy()
    scores[histories[0]] = -np.inf
    assert top.tolist() == np.argsort(-scores, kind="stable")[:20].tolist()
    # Serving scores candidates with the same numbers as the candidates file.
    live = LiveRetriever(out, dataset)
    ids = [dataset.item(int(i)).id for i in histories[0]]
    assert np.allclose(
        live.scores(ids, [dataset.item(int(i)).id for i in top]), candidates.valid_scores(row, 20), atol=1e-5
    )


def test_an_ensemble_refuses_what_it_cannot_combine(trained: tuple[ProcessedDataset, Path], tmp_path: Path) -> None:
    dataset, work = trained
    with pytest.raises(ConfigError, match="at least two runs"):
        build_ensemble(dataset, [work / "sas"], tmp_path / "one")
    with pytest.raises(ConfigError, match="pop run cannot be an ensemble member"):
        build_ensemble(dataset, [work / "sas", work / "pop"], tmp_path / "pop")
    assert not (tmp_path / "one").exists() and not (tmp_path / "pop").exists()


def test_an_ensemble_of_runs_from_another_dataset_version_is_refused(
    trained: tuple[ProcessedDataset, Path], tmp_path: Path
) -> None:
    _, work = trained
    raw = write_ml_latest_small(generate(users=40, movies=60, seed=9), tmp_path / "raw")
    other = prepare_dataset("ml-latest-small", raw, tmp_path / "data")
    with pytest.raises(DatasetError, match="another dataset or version"):
        build_ensemble(other, [work / "lru"], tmp_path / "ensemble")
