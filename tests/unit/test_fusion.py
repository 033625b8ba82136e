"""Fusion: per-user standardised scores mixed by one weight, the weight chosen on val and nowhere else."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from services.ranker.fusion import WEIGHT_GRID, fuse, standardised
from services.ranker.ranking import RankingTask
from training.examples import Example
from training.fusion import choose_fusion, val_ndcg10

finite = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False)


@given(arrays(np.float64, st.integers(2, 20), elements=finite))
def test_standardised_scores_have_zero_mean_and_unit_spread_or_are_all_zero(scores: np.ndarray) -> None:
    z = standardised(scores)
    if np.ptp(scores) == 0:
        assert not z.any()
    elif scores.std() > 1e-9:
        assert abs(z.mean()) < 1e-6 and abs(z.std() - 1) < 1e-6
        assert np.all(np.diff(z[np.argsort(scores, kind="stable")]) >= -1e-12)  # the order is kept


def test_the_ends_of_the_grid_are_the_ranker_alone_and_the_retriever_alone() -> None:
    ranker, retriever = np.array([-3.0, -0.5, -2.0, -1.0]), np.array([4.0, 3.0, 2.0, 1.0])
    assert np.argsort(-fuse(ranker, retriever, 0.0)).tolist() == [1, 3, 2, 0]
    assert np.argsort(-fuse(ranker, retriever, 1.0)).tolist() == [0, 1, 2, 3]
    # Scale does not matter: a retriever on another logit scale mixes the same way.
    assert np.allclose(fuse(ranker, retriever, 0.3), fuse(ranker * 7, retriever * 100 + 5, 0.3))
    with pytest.raises(ValueError, match="4 ranker scores but 3"):
        fuse(ranker, retriever[:3], 0.5)
    assert WEIGHT_GRID[0] == 0.0 and WEIGHT_GRID[-1] == 1.0 and len(WEIGHT_GRID) == 21


def example(target_position: int, retriever_scores: np.ndarray | None) -> Example:
    candidates = np.arange(1, 6)
    task = RankingTask(1, "u", np.array([9]), candidates, retriever_scores)
    return Example(task=task, target=int(candidates[target_position]))


def test_the_chosen_weight_is_the_best_on_val_and_the_curve_ends_match_each_side() -> None:
    retriever = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    # The retriever puts the target 2nd for every user; the ranker alone puts it 1st for half, last for the rest;
    # mixing them keeps it in the top 2 for all, ahead of the retriever's own top item for the first half.
    examples = [example(1, retriever)] * 4
    ranker = [np.array([0.0, 3.0, 0.5, 0.2, 0.1])] * 2 + [np.array([0.0, -3.0, 0.5, 0.2, 0.1])] * 2
    choice = choose_fusion(ranker, examples, retriever="run")
    assert choice is not None and choice.retriever == "run" and choice.val_users == 4
    curve = dict(choice.curve)
    assert choice.val_ndcg10 == max(curve.values()) and curve[choice.weight] == choice.val_ndcg10
    assert choice.weight == min(w for w, v in curve.items() if v == choice.val_ndcg10)  # ties: trust the ranker
    alone = [np.argsort(-s, kind="stable") for s in ranker]
    assert choice.val_ndcg10_ranker == pytest.approx(val_ndcg10(alone, examples))
    assert choice.val_ndcg10_retriever == pytest.approx(1 / np.log2(3))
    assert choice.val_ndcg10 > max(choice.val_ndcg10_ranker, choice.val_ndcg10_retriever)


def test_no_choice_without_retriever_scores() -> None:
    assert choose_fusion([np.zeros(5)], [example(0, None)], retriever="run") is None
    assert choose_fusion([], [], retriever="run") is None
