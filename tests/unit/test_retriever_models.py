from __future__ import annotations

import numpy as np
import pytest
import torch

from services.graph_loader.sequences import UserSequences
from services.ranker.retriever.base import Popularity
from services.ranker.retriever.lru import LRURec, linear_recurrence
from services.ranker.retriever.retrieve import left_pad, rank_all_items, top_k_stable
from services.ranker.retriever.sasrec import SASRec


def test_doubling_scan_equals_the_sequential_recurrence() -> None:
    torch.manual_seed(0)
    real, imag = torch.randn(3, 13, 5), torch.randn(3, 13, 5)
    nu, theta = torch.rand(5), torch.rand(5)
    fast_real, fast_imag = linear_recurrence(real, imag, nu, theta)
    lam = torch.exp(torch.complex(-nu, theta))
    state, expected = torch.zeros(3, 5, dtype=torch.cfloat), []
    for t in range(13):
        state = lam * state + torch.complex(real[:, t], imag[:, t])
        expected.append(state)
    reference = torch.stack(expected, dim=1)
    assert torch.allclose(fast_real, reference.real, atol=1e-5)
    assert torch.allclose(fast_imag, reference.imag, atol=1e-5)


def test_lrurec_ignores_left_padding() -> None:
    """Padding never enters the recurrent state, so the amount of it cannot change a prediction.
    (SASRec's absolute positions do shift with padding, as in the original model.)"""
    torch.manual_seed(0)
    model = LRURec(30, dim=16).eval()
    history = np.array([4, 9, 2, 17, 5])
    with torch.no_grad():
        short = model.score_next(left_pad([history], 6))
        long = model.score_next(left_pad([history], 12))
    assert torch.allclose(short, long, atol=1e-5)


@pytest.mark.parametrize("make", [lambda: LRURec(30, dim=16), lambda: SASRec(30, max_len=12, dim=16)])
def test_states_are_causal(make) -> None:
    torch.manual_seed(0)
    model = make().eval()
    a = torch.tensor([[0, 3, 4, 5, 6, 7]])
    b = torch.tensor([[0, 3, 4, 5, 9, 11]])
    with torch.no_grad():
        first, second = model(a), model(b)
    assert torch.allclose(first[:, :4], second[:, :4], atol=1e-5)
    assert not torch.allclose(first[:, 4:], second[:, 4:])


def test_padding_item_never_scores() -> None:
    model = LRURec(10, dim=8).eval()
    assert torch.isneginf(model.score_next(left_pad([np.array([1, 2])], 4))[:, 0]).all()


def test_rank_all_items_masks_history_and_breaks_ties_by_id() -> None:
    # Items 1..6; user 1 saw 1, 2 (train) then 3 (val) then 4 (test).
    sequences = UserSequences(items=[np.array([1, 2, 3, 4])])
    scores = torch.tensor([float("-inf"), 9.0, 9.0, 5.0, 5.0, 5.0, 1.0])
    scorer = Popularity(torch.zeros(7))
    scorer.counts = scores
    val = rank_all_items(scorer, sequences, "val", max_len=4, top_k=4)
    # history 1, 2 masked; items 3, 4, 5 tie at 5.0 -> id order; target 3 ranks first
    assert val.top_items.tolist() == [[3, 4, 5, 6]]
    assert val.target_ranks.tolist() == [1]
    test = rank_all_items(scorer, sequences, "test", max_len=4, top_k=3)
    # history 1, 2, 3 masked; 4 and 5 tie, 4 has the lower id -> rank 1
    assert test.top_items.tolist() == [[4, 5, 6]]
    assert test.target_ranks.tolist() == [1]
    scorer.counts = torch.tensor([float("-inf"), 9.0, 9.0, 5.0, 2.0, 5.0, 7.0])
    test = rank_all_items(scorer, sequences, "test", max_len=4, top_k=3)
    assert test.top_items.tolist() == [[6, 5, 4]]
    assert test.target_ranks.tolist() == [3]


@pytest.mark.parametrize("k", [1, 5, 20, 40])
def test_top_k_stable_is_the_full_stable_sort_cut_at_k(k: int) -> None:
    """Coarse scores make ties everywhere, also across the k-th place; -inf rows have fewer than k finite scores."""
    generator = torch.Generator().manual_seed(k)
    scores = torch.randint(0, 6, (64, 30), generator=generator).float()
    scores[::7, 3:] = float("-inf")
    expected = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k]
    assert torch.equal(top_k_stable(scores, k), expected)
    distinct = torch.rand(64, 30, generator=generator)
    assert torch.equal(top_k_stable(distinct, k), torch.sort(distinct, dim=1, descending=True).indices[:, :k])
