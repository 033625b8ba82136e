"""The arithmetic and wording of training estimates, and when they are logged; timing itself is never asserted
(a fake clock stands in for it)."""

from __future__ import annotations

import logging

import pytest

from training.config import RankerConfig, default_eval_every
from training.progress import (
    RunEstimate,
    RunPlan,
    Trial,
    counted,
    describe_estimate,
    duration,
    estimated_seconds,
    in_parts,
    progress_bar,
)
from training.ranker import validations_planned

RANKER_PLAN = RunPlan(epochs=3, steps_per_epoch=250, validations=4, validation_users=610)
# 5 steps in 10 s (2 s a step), 610 users validated in 61 s (0.1 s a user)
TRIAL = Trial(steps=5, step_seconds=10.0, validation_users=610, validation_seconds=61.0)


def test_an_estimate_is_the_steps_and_the_validations_at_their_measured_cost() -> None:
    assert estimated_seconds(RANKER_PLAN, TRIAL) == pytest.approx(750 * 2.0 + 4 * 610 * 0.1)
    partial = Trial(steps=5, step_seconds=10.0, validation_users=61, validation_seconds=6.1)  # a tenth of val
    assert estimated_seconds(RANKER_PLAN, partial) == pytest.approx(estimated_seconds(RANKER_PLAN, TRIAL))


def test_the_estimate_says_what_it_counts_and_what_it_measured() -> None:
    assert describe_estimate(RANKER_PLAN, TRIAL) == (
        "estimate: ~29 min for 3 epochs × 250 steps + 4 validations of 610 users "
        "(measured on the first 5 steps and 610 val users)"
    )
    early = RunPlan(
        epochs=500,
        steps_per_epoch=1200,
        validations=500,
        validation_users=610,
        step_unit="batch",
        stops_early="fewer when val R@10 has not improved for 20 epochs",
        max_minutes=30,
    )
    one_batch = Trial(steps=1, step_seconds=0.05, validation_users=256, validation_seconds=0.256)
    assert describe_estimate(early, one_batch) == (
        "estimate: at most ~8.4 h for 500 epochs × 1,200 batches + 500 validations of 610 users, fewer when val "
        "R@10 has not improved for 20 epochs; the time budget stops training after 30 min "
        "(measured on the first batch and 256 val users)"
    )


@pytest.mark.parametrize(
    ("seconds", "said"), [(0.4, "0 s"), (89, "89 s"), (90, "2 min"), (89 * 60, "89 min"), (90 * 60, "1.5 h")]
)
def test_durations_are_as_precise_as_an_estimate_deserves(seconds: float, said: str) -> None:
    assert duration(seconds) == said


def test_counts_take_the_plural_they_need() -> None:
    assert [counted(1, "epoch"), counted(3, "epoch"), counted(1200, "batch"), counted(1, "batch")] == [
        "1 epoch",
        "3 epochs",
        "1,200 batches",
        "1 batch",
    ]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def estimate_records(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "training.progress" and "estimate:" in r.getMessage()]


def test_the_estimate_is_logged_once_after_a_validation_and_the_trial_steps(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="training.progress")
    clock = FakeClock()
    estimate = RunEstimate("ranker:", RANKER_PLAN, trial_steps=5, trial_seconds=1e9, clock=clock)
    with estimate.validation(610):
        clock.now += 61.0
    estimate.start_steps()
    for step in range(1, 8):
        clock.now += 2.0
        estimate.step_done()
        if step == 2:
            with estimate.validation(610):  # a validation inside the trial is not step time
                clock.now += 1000.0
        assert (estimate.trial is None) == (step < 5)
    assert estimate.trial == TRIAL
    assert estimate_records(caplog) == [f"ranker: {describe_estimate(RANKER_PLAN, TRIAL)}"]


def test_a_slow_step_ends_the_trial_early_and_a_quiet_estimate_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="training.progress")
    clock = FakeClock()
    estimate = RunEstimate("ranker:", RANKER_PLAN, enabled=False, trial_steps=5, trial_seconds=30.0, clock=clock)
    estimate.start_steps()
    clock.now += 40.0
    estimate.step_done()
    assert estimate.trial is None  # no validation timed yet
    with estimate.validation(10):
        clock.now += 1.0
    assert estimate.trial == Trial(steps=1, step_seconds=40.0, validation_users=10, validation_seconds=1.0)
    assert estimate_records(caplog) == []


def test_parts_cover_every_item_once_in_order() -> None:
    seen: list[slice] = []

    def work(part: slice) -> list[int]:
        seen.append(part)
        return list(range(part.start, part.stop))

    bar = progress_bar(10, "test", enabled=False)
    assert in_parts(10, 4, work, bar) == list(range(10))
    assert seen == [slice(0, 4), slice(4, 8), slice(8, 10)]


@pytest.mark.parametrize("steps", [*range(5, 60), 75, 499, 500, 501, 5000])
def test_the_default_validates_at_least_five_times_and_at_least_every_100_steps(steps: int) -> None:
    every = default_eval_every(steps)
    assert validations_planned(steps, every) - 1 >= 5  # after step 0
    assert every <= 100


def test_the_default_is_resolved_from_the_run_and_an_explicit_interval_kept() -> None:
    # 600 prefixes of 8, one LoRA epoch: 75 steps, validated at 15, 30, 45, 60 and 75 (was: only at 75)
    assert RankerConfig(base_model="smollm2").resolved(train_examples=600).eval_every == 15
    assert RankerConfig(base_model="smollm2", eval_every=30).resolved(train_examples=600).eval_every == 30
    assert RankerConfig(lr=0.0).resolved(train_examples=600).lr == 0.0  # no longer replaced by the default
