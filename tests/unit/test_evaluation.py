"""The evaluation harness on hand-made candidates: exact metric values, refusals, the report files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from services.core.errors import ConfigError, DatasetError
from services.graph_loader.dataset import ProcessedDataset
from services.graph_loader.prepare import prepare_dataset
from services.graph_loader.sequences import user_sequences
from services.ranker.candidates import CandidateHeader, CandidateSet
from services.ranker.ranking import RankingTask, RetrieverOrder
from training.evaluation.evaluate import evaluate
from training.evaluation.harness import ModelSpec, evaluate_models


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> ProcessedDataset:
    """Enough items that every user has 30 unseen ones to fill a candidate list."""
    from services.graph_loader.synthetic import generate, write_ml_latest_small

    folder = tmp_path_factory.mktemp("eval")
    raw = write_ml_latest_small(generate(users=60, movies=150, ratings_per_user=(8, 30), seed=5), folder / "raw")
    return prepare_dataset("ml-latest-small", raw, folder / "data", min_interactions=2)


def write_run(dataset: ProcessedDataset, run: Path, target_ranks: list[int | None], *, seed: int = 0) -> None:
    """Candidates whose true test item sits at the given 1-based rank (None: not in the top K)."""
    sequences = user_sequences(dataset)
    users = np.arange(1, len(dataset.users) + 1)
    top_k = 30
    items = np.zeros((len(users), top_k), dtype=np.int32)
    for row, user in enumerate(users):
        target = sequences.target(int(user), "test")
        seen = set(sequences.history(int(user), "test").tolist()) | {target}
        others = [i for i in range(1, len(dataset.items) + 1) if i not in seen][:top_k]
        rank = target_ranks[row % len(target_ranks)]
        if rank is not None:
            others.insert(rank - 1, target)
        items[row] = others[:top_k]
    scores = -np.tile(np.arange(top_k, dtype=np.float32), (len(users), 1))
    header = CandidateHeader(
        dataset=dataset.name,
        data_hash=dataset.manifest.data_hash,
        split="test",
        retriever="hand-made",
        seed=seed,
        top_k=top_k,
    )
    CandidateSet(header, users, items, scores).save(run / "candidates-test.npz")


class Reverse:
    name = "reverse"

    def rank(self, tasks: list[RankingTask]) -> list[np.ndarray]:
        return [task.candidates[::-1] for task in tasks]


class Broken:
    name = "broken"

    def rank(self, tasks: list[RankingTask]) -> list[np.ndarray]:
        return [task.candidates[:-1] for task in tasks]


def test_exact_values_for_retriever_order_and_a_reranker(dataset: ProcessedDataset, tmp_path: Path) -> None:
    users = len(dataset.users)
    ranks = [1, 3, 20, 25, None]
    write_run(dataset, tmp_path / "run", ranks)
    expected_rank = [ranks[u % 5] for u in range(users)]
    specs = [
        ModelSpec("retriever", [tmp_path / "run"], RetrieverOrder()),
        ModelSpec("reverse", [tmp_path / "run"], Reverse()),
    ]
    retriever, reverse = evaluate_models(
        dataset, user_sequences(dataset), specs, split="test", ks=[1, 5, 10], retrieval_ks=[1, 20, 30], progress=False
    )
    seed = retriever.seeds[0]
    in_20 = np.array([r is not None and r <= 20 for r in expected_rank])
    assert np.array_equal(seed.retrieved, in_20)
    assert seed.overall["R@1"].sum() == sum(r == 1 for r in expected_rank)
    assert seed.overall["N@5"].sum() == pytest.approx(
        sum(r == 1 for r in expected_rank) + 0.5 * sum(r == 3 for r in expected_rank)
    )
    assert seed.retrieval["R@30"].sum() == sum(r is not None for r in expected_rank)
    assert seed.retrieval["R@20"].sum() == in_20.sum()
    # Reversing 20 candidates moves rank r to 21 - r: 1 -> 20, 3 -> 18, 20 -> 1.
    assert reverse.seeds[0].overall["R@1"].sum() == sum(r == 20 for r in expected_rank)
    assert reverse.seeds[0].overall["R@10"].sum() == sum(r == 20 for r in expected_rank)


def test_refusals(dataset: ProcessedDataset, tmp_path: Path) -> None:
    write_run(dataset, tmp_path / "run", [1])
    sequences = user_sequences(dataset)
    spec = [ModelSpec("m", [tmp_path / "run"], RetrieverOrder())]
    with pytest.raises(ConfigError, match="k = 25 is larger than the 20 candidates"):
        evaluate_models(dataset, sequences, spec, split="test", ks=[25], retrieval_ks=[1], progress=False)
    with pytest.raises(ConfigError, match="kept only the top 30 candidates"):
        evaluate_models(dataset, sequences, spec, split="test", ks=[10], retrieval_ks=[50], progress=False)
    with pytest.raises(DatasetError, match="did not return a permutation"):
        evaluate_models(
            dataset,
            sequences,
            [ModelSpec("b", [tmp_path / "run"], Broken())],
            split="test",
            ks=[10],
            retrieval_ks=[10],
            progress=False,
        )
    from services.core.errors import DatasetNotFoundError

    with pytest.raises(DatasetNotFoundError, match=r"candidates-val\.npz: candidates file not found"):
        evaluate_models(dataset, sequences, spec, split="val", ks=[10], retrieval_ks=[10], progress=False)


def test_report_files_seeds_and_comparisons(dataset: ProcessedDataset, tmp_path: Path) -> None:
    for seed, ranks in enumerate(([1, 2, None], [1, 4, None], [2, 2, None])):
        write_run(dataset, tmp_path / "good" / f"seed-{seed}", ranks, seed=seed)
    write_run(dataset, tmp_path / "weak", [15, None, None])
    report = evaluate(
        dataset,
        [
            ModelSpec("weak", [tmp_path / "weak"], RetrieverOrder()),
            ModelSpec("good", [tmp_path / "good"], RetrieverOrder()),
        ],
        split="test",
        out=tmp_path / "out",
        command="test",
        resamples=300,
        retrieval_ks=[1, 10, 30],
        progress=False,
    )
    good = report.models[1]
    assert good.seeds == [0, 1, 2]
    assert len(good.overall["R@10"].per_seed) == 3
    assert good.overall["R@1"].std > 0  # the seeds differ at rank 1
    assert good.overall["R@10"].std == 0
    assert good.overall["R@10"].ci_low <= good.overall["R@10"].mean <= good.overall["R@10"].ci_high
    assert good.subset["R@10"].mean == pytest.approx(1.0)
    n10 = next(c for c in report.comparisons if c.metric == "N@10")
    assert (n10.baseline, n10.model) == ("weak", "good")
    assert n10.significant and n10.mean_difference > 0
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert saved["models"][1]["name"] == "good"
    assert saved["paper"]["LRURec (retriever)"]["N@10"] == 0.0705
    text = (tmp_path / "out" / "metrics.md").read_text()
    assert "| *paper: LRURec (retriever)* | 0.0390 | 0.0468 | 0.0705 |" in text
    assert "## Overall, beside the paper" in text
    assert "![paired differences against weak](metrics.png)" in text
    assert "![metrics at k](curves.png)" in text
    for figure in ("metrics.png", "curves.png"):
        assert (tmp_path / "out" / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
