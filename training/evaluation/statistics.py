"""How sure a figure is: bootstrap intervals over users, paired tests between two models on the same users."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel

DEFAULT_RESAMPLES = 2000


class Interval(BaseModel):
    mean: float
    low: float
    high: float


class PairedComparison(BaseModel):
    """b − a on the same users: mean difference, its bootstrap 95% interval, and a sign-flip p-value."""

    mean_difference: float
    low: float
    high: float
    p_value: float
    significant: bool


def bootstrap_interval(
    values: np.ndarray,
    *,
    per: np.ndarray | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = 0.95,
) -> Interval:
    """Percentile interval of sum(values) / sum(per) (the mean when `per` is None), resampling users.

    With `per` = 1 for retrieved users, this is the interval of a "subset" metric computed from
    per-user values over all users.
    """
    values = np.asarray(values, dtype=np.float64)
    weights = np.ones_like(values) if per is None else np.asarray(per, dtype=np.float64)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(values), size=(resamples, len(values)))
    with np.errstate(invalid="ignore", divide="ignore"):
        estimates = values[picks].sum(axis=1) / weights[picks].sum(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.nanquantile(estimates, [tail, 1.0 - tail])
    return Interval(mean=float(values.sum() / weights.sum()), low=float(low), high=float(high))


def paired_comparison(
    a: np.ndarray, b: np.ndarray, *, resamples: int = DEFAULT_RESAMPLES, seed: int = 0, level: float = 0.95
) -> PairedComparison:
    """Compare per-user values of two models on the same users.

    The interval bootstraps the mean difference; the p-value is a two-sided randomisation test that
    flips the sign of each user's difference (under "no difference" either sign is equally likely).
    """
    differences = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
    interval = bootstrap_interval(differences, resamples=resamples, seed=seed, level=level)
    rng = np.random.default_rng(seed + 1)
    signs = rng.choice(np.array([-1.0, 1.0]), size=(resamples, len(differences)))
    null_means = np.abs((signs * differences).mean(axis=1))
    observed = abs(differences.mean())
    p_value = float((np.sum(null_means >= observed - 1e-15) + 1) / (resamples + 1))
    return PairedComparison(
        mean_difference=interval.mean,
        low=interval.low,
        high=interval.high,
        p_value=p_value,
        significant=bool(p_value < 1.0 - level and (interval.low > 0 or interval.high < 0)),
    )
