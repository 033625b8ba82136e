"""Metrics against hand-computed values: these catch an off-by-one in rank or a wrong log base."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training.evaluation.metrics import MISS, per_user_metrics, rank_in_list
from training.evaluation.statistics import bootstrap_interval, paired_comparison


def test_rank_in_list_is_one_based() -> None:
    assert rank_in_list([7, 3, 9], 7) == 1
    assert rank_in_list(np.array([7, 3, 9]), 9) == 3
    assert rank_in_list([7, 3, 9], 4) == MISS


def test_hand_computed_values() -> None:
    # ranks: first place, third place, tenth place, eleventh place, not retrieved at all
    values = per_user_metrics(np.array([1, 3, 10, 11, MISS]), ks=[1, 5, 10])
    assert values["R@1"].tolist() == [1, 0, 0, 0, 0]
    assert values["R@5"].tolist() == [1, 1, 0, 0, 0]
    assert values["R@10"].tolist() == [1, 1, 1, 0, 0]
    assert values["M@10"] == pytest.approx([1, 1 / 3, 1 / 10, 0, 0])
    assert values["M@5"] == pytest.approx([1, 1 / 3, 0, 0, 0])
    # NDCG with one relevant item: 1 / log2(rank + 1); rank 3 gives exactly 0.5 (ln would give 0.72)
    assert values["N@10"] == pytest.approx([1, 0.5, 1 / math.log2(11), 0, 0])
    assert values["N@10"].mean() == pytest.approx((1 + 0.5 + 1 / math.log2(11)) / 5)


def test_bootstrap_interval() -> None:
    constant = bootstrap_interval(np.full(100, 0.25))
    assert (constant.mean, constant.low, constant.high) == pytest.approx((0.25, 0.25, 0.25))
    hits = np.array([1.0] * 20 + [0.0] * 80)
    interval = bootstrap_interval(hits, resamples=4000)
    assert interval.mean == pytest.approx(0.2)
    # binomial standard error sqrt(.2 * .8 / 100) = 0.04: the 95% interval is about ±0.08
    assert 0.11 < interval.low < 0.14 and 0.26 < interval.high < 0.29


def test_subset_interval_is_a_ratio() -> None:
    values = np.array([1.0, 0.5, 0.0, 0.0])
    retrieved = np.array([1.0, 1.0, 1.0, 0.0])
    assert bootstrap_interval(values, per=retrieved).mean == pytest.approx(1.5 / 3)


def test_paired_comparison_sees_a_real_difference_and_not_noise() -> None:
    rng = np.random.default_rng(0)
    a = rng.random(600)
    same = paired_comparison(a, a.copy())
    assert same.mean_difference == 0 and not same.significant and same.p_value > 0.5
    better = paired_comparison(a, a + 0.05 + rng.normal(0, 0.01, 600))
    assert better.significant and better.p_value < 0.01 and better.low > 0
    noisy = paired_comparison(a, a + rng.normal(0, 0.3, 600))
    assert not noisy.significant
