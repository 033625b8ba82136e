"""Progress bars for the long steps of a training job, and how long the whole run will take, said early.

Every training (retriever, preference module, LLM ranker) shows a bar for each step that can take more
than a few seconds (building prompts, each validation, the epochs) and logs an estimate of the whole run
once its first validation and its first few steps are timed. Those are real work of the run, not an extra
trial (except the retriever's, whose first validation comes after a whole epoch: it ranks one batch of val
users beforehand, in eval mode, which draws nothing). Only what is logged depends on the clock; which steps
run, what is validated and what is saved never do.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from tqdm import tqdm

logger = logging.getLogger(__name__)
Result = TypeVar("Result")

TRIAL_STEPS = 5
# A slow model (SmolLM2 on a CPU: ~17 s a step) must not keep the user waiting for five of them.
TRIAL_SECONDS = 30.0


def progress_bar(total: int, desc: str, *, enabled: bool, unit: str = " steps", leave: bool = True) -> tqdm:
    """`enabled` is False when the caller asked for no progress or is not the process that reports (DDP rank > 0)."""
    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, leave=leave, dynamic_ncols=True)


def in_parts(count: int, size: int, work: Callable[[slice], list[Result]], bar: tqdm) -> list[Result]:
    """work(part) over consecutive slices of at most `size` of `count` items, concatenated. The bar counts
    the items done and is closed at the end."""
    results: list[Result] = []
    for start in range(0, count, size):
        part = slice(start, min(start + size, count))
        results.extend(work(part))
        bar.update(part.stop - part.start)
    bar.close()
    return results


@dataclass(frozen=True)
class RunPlan:
    """The most work a run will do, in its own units."""

    epochs: int
    steps_per_epoch: int
    validations: int
    validation_users: int
    step_unit: str = "step"
    stops_early: str = ""  # how the run may end sooner (early stopping), said with the estimate
    max_minutes: float | None = None  # the time budget that stops training, if any

    @property
    def steps(self) -> int:
        return self.epochs * self.steps_per_epoch


@dataclass(frozen=True)
class Trial:
    """What the first steps and one validation (or part of one) of the run cost."""

    steps: int
    step_seconds: float
    validation_users: int
    validation_seconds: float


def estimated_seconds(plan: RunPlan, trial: Trial) -> float:
    """The plan's steps at the trial's cost per step, and its validations at the trial's cost per user."""
    per_step = trial.step_seconds / max(trial.steps, 1)
    per_user = trial.validation_seconds / max(trial.validation_users, 1)
    return plan.steps * per_step + plan.validations * plan.validation_users * per_user


def duration(seconds: float) -> str:
    """45 s, 12 min, 2.5 h: as precise as an estimate deserves."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


IRREGULAR_PLURALS = {"batch": "batches"}  # the units not made plural by an s


def counted(count: int, unit: str) -> str:
    """1 epoch, 3 epochs, 1,200 batches."""
    if count == 1:
        return f"1 {unit}"
    return f"{count:,} {IRREGULAR_PLURALS.get(unit, unit + 's')}"


def describe_estimate(plan: RunPlan, trial: Trial) -> str:
    """e.g. "estimate: ~12 min for 3 epochs × 250 steps + 4 validations of 610 users (measured on the first 5
    steps and 610 val users)"."""
    seconds = estimated_seconds(plan, trial)
    bound = "at most ~" if plan.stops_early else "~"
    work = (
        f"{counted(plan.epochs, 'epoch')} × {counted(plan.steps_per_epoch, plan.step_unit)} + "
        f"{counted(plan.validations, 'validation')} of {counted(plan.validation_users, 'user')}"
    )
    sooner = f", {plan.stops_early}" if plan.stops_early else ""
    if plan.max_minutes is not None and seconds > plan.max_minutes * 60:
        sooner += f"; the time budget stops training after {duration(plan.max_minutes * 60)}"
    steps = plan.step_unit if trial.steps == 1 else counted(trial.steps, plan.step_unit)
    measured = f"the first {steps} and {counted(trial.validation_users, 'val user')}"
    return f"estimate: {bound}{duration(seconds)} for {work}{sooner} (measured on {measured})"


class RunEstimate:
    """Times the run's first validation and its first steps, then logs the estimate once.

    The step clock pauses while a validation is timed, so validations inside the trial do not count as steps.
    """

    def __init__(
        self,
        what: str,
        plan: RunPlan,
        *,
        enabled: bool = True,
        trial_steps: int = TRIAL_STEPS,
        trial_seconds: float = TRIAL_SECONDS,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.what = what
        self.plan = plan
        self.trial: Trial | None = None
        self._enabled = enabled
        self._trial_steps = max(1, min(trial_steps, plan.steps))
        self._trial_seconds = trial_seconds
        self._clock = clock
        self._validation: tuple[int, float] | None = None
        self._steps = 0
        self._step_seconds = 0.0
        self._since: float | None = None

    @contextmanager
    def validation(self, users: int) -> Iterator[None]:
        """Around a validation of `users` users; the first one timed is the trial's."""
        started = self._clock()
        yield
        seconds = self._clock() - started
        if self._validation is None:
            self._validation = (users, seconds)
        if self._since is not None:
            self._since += seconds  # not step time
        self._log_when_ready()

    def start_steps(self) -> None:
        """Just before a run of steps: what happened since the last step (e.g. building an epoch's batches) is
        not step time."""
        self._since = self._clock()

    def step_done(self) -> None:
        if self._since is None or self.trial is not None:
            return
        now = self._clock()
        self._steps += 1
        self._step_seconds += now - self._since
        self._since = now
        self._log_when_ready()

    def _log_when_ready(self) -> None:
        trial_over = self._steps >= self._trial_steps or (self._steps > 0 and self._step_seconds >= self._trial_seconds)
        if self.trial is not None or self._validation is None or not trial_over:
            return
        users, validation_seconds = self._validation
        self.trial = Trial(self._steps, self._step_seconds, users, validation_seconds)
        if self._enabled:
            logger.info("%s %s", self.what, describe_estimate(self.plan, self.trial))


def warn_unless_better_than_untrained(what: str, trained: float, untrained: float, *, consequence: str) -> None:
    """Training that did not beat its own untrained start on val is saved all the same, but never silently."""
    if trained <= untrained:
        logger.warning(
            "%s (val N@10 %.4f) does not beat its untrained start (%.4f) on val: %s; recorded as beats_untrained=false",
            what,
            trained,
            untrained,
            consequence,
        )
