from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from services.graph_loader.dataset import ProcessedDataset
from services.graph_loader.prepare import prepare_dataset
from services.graph_loader.sequences import user_sequences
from training.examples import training_examples


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory, ml_raw: Path) -> ProcessedDataset:
    return prepare_dataset("ml-latest-small", ml_raw, tmp_path_factory.mktemp("ex") / "data")


def by_id(histories: list[np.ndarray], k: int) -> np.ndarray:
    """A stand-in retriever: items in id order, for every history."""
    return np.tile(np.arange(1, k + 1), (len(histories), 1))


def test_random_candidates_are_unseen_and_shuffled(dataset: ProcessedDataset) -> None:
    sequences = user_sequences(dataset)
    examples = training_examples(dataset, sequences, count=50, seed=1)
    assert len(examples) == 50
    positions = set()
    for example in examples:
        task = example.task
        seen = set(sequences.items[task.user - 1].tolist())
        assert len(task.candidates) == 20 == len(set(task.candidates.tolist()))
        assert example.target in task.candidates and example.target in seen
        assert not (set(task.candidates.tolist()) - {example.target}) & seen
        assert example.target == sequences.train(task.user)[len(task.history)]
        positions.add(example.target_position)
    assert len(positions) > 5  # the target is not always in the same slot
    assert [e.task.candidates.tolist() for e in training_examples(dataset, sequences, count=50, seed=1)] == [
        e.task.candidates.tolist() for e in examples
    ]


def test_hard_and_retrieved_candidates_come_from_the_retriever(dataset: ProcessedDataset) -> None:
    sequences = user_sequences(dataset)
    for example in training_examples(dataset, sequences, count=20, seed=2, kind="hard", retriever=by_id):
        seen = set(sequences.items[example.task.user - 1].tolist())
        expected = [i for i in range(1, 100) if i not in seen][:19]
        assert sorted(set(example.task.candidates.tolist()) - {example.target}) == expected
    retrieved = training_examples(dataset, sequences, count=20, seed=2, kind="retrieved", retriever=by_id)
    assert retrieved
    for example in retrieved:
        shown = set(example.task.history.tolist())
        assert example.task.candidates.tolist() == [i for i in range(1, 100) if i not in shown][:20]  # retriever order
        assert example.target in example.task.candidates
    with pytest.raises(ValueError, match="need a retriever"):
        training_examples(dataset, sequences, count=1, seed=0, kind="hard")
