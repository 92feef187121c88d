"""The dunning schedule: the steps of an invoice (SPEC 2.5).

D is the overdue instant (``overdue_instant``), S = D + grace the suspension instant
(``suspension_instant``). ``plan_steps`` lays out every step of an invoice in advance;
``decide_steps`` says which of the steps that are due now run and which are skipped
because their time had passed; ``STEP_TABLE`` (domain.notifications.catalog) is SPEC
2.5's table (mail, runs-if-late, order). Whether a step that runs actually sends anything is
``evaluation.drives_dunning`` at that moment.

Durations, due dates and their time zone are read by ``domain.when``; every instant here
is an aware datetime.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from domain.notifications.catalog import STEP_TABLE, StepKind
from domain.when import format_duration


@dataclass(frozen=True)
class Policy:
    """A class's dunning schedule: reminders before D, grace until S, warning before S."""

    reminders: tuple[timedelta, ...] = (timedelta(days=3),)
    grace: timedelta = timedelta(0)
    warning: timedelta = timedelta(days=1)

    def __post_init__(self) -> None:
        # Accept any sequence of reminders but store a tuple, so the policy stays hashable.
        object.__setattr__(self, "reminders", tuple(self.reminders))
        for name, value in [("grace", self.grace), ("warning", self.warning)] + [
            ("reminder", r) for r in self.reminders
        ]:
            if not isinstance(value, timedelta):
                raise ValueError(f"{name} must be a timedelta, got {value!r}")
            if value < timedelta(0) or value.microseconds:
                raise ValueError(f"{name} must be a whole, non-negative number of seconds")


@dataclass(frozen=True)
class Step:
    """One scheduled step; ``key`` is stable and unique within the invoice."""

    kind: StepKind
    key: str
    at: datetime


def suspension_instant(overdue_at: datetime, policy: Policy) -> datetime:
    """S = D + grace."""
    return _utc(overdue_at, "overdue_at") + policy.grace


def plan_steps(overdue_at: datetime, policy: Policy) -> tuple[Step, ...]:
    """Every step of an invoice: reminders at D - r, overdue at D, warning at S - warning,
    suspension at S; in time order, ties broken by the story order above."""
    overdue = _utc(overdue_at, "overdue_at")
    suspension = suspension_instant(overdue, policy)
    steps = [
        Step(StepKind.DUE_REMINDER, f"due_reminder:{format_duration(r)}", overdue - r)
        for r in set(policy.reminders)  # "3d,3d" or "3d,72h" is one reminder, not two
    ]
    steps.append(Step(StepKind.OVERDUE, "overdue", overdue))
    steps.append(
        Step(StepKind.SUSPENSION_WARNING, "suspension_warning", suspension - policy.warning)
    )
    steps.append(Step(StepKind.SUSPENSION, "suspension", suspension))
    return tuple(sorted(steps, key=_step_order))


class StepDecision(StrEnum):
    RUN = "run"
    SKIP = "skip"


def decide_steps(
    pending: Sequence[Step], now: datetime, reached_until: datetime | None
) -> tuple[tuple[Step, StepDecision], ...]:
    """Run or skip each pending step that is due (``at <= now``), in time order.

    ``reached_until`` is the instant the workflow was sleeping towards when its timer
    fired, or None when it arrives here without having slept towards these steps (it
    started late, or the invoice has just become ``collect``). A step at or before it was
    reached on time and runs; a step whose time had already passed is skipped, except
    ``overdue`` and ``suspension``, which run at once. A reminder or warning is also
    skipped when a later step is due too: after an outage the customer gets the overdue
    notice, not yesterday's reminder followed by it.
    """
    _utc(now, "now")
    if reached_until is not None:
        _utc(reached_until, "reached_until")
    due = sorted((step for step in pending if step.at <= now), key=_step_order)
    if not due:
        return ()
    latest = due[-1].at
    decisions = []
    for step in due:
        if STEP_TABLE[step.kind].runs_if_late:
            decision = StepDecision.RUN
        elif step.at < latest:
            decision = StepDecision.SKIP  # stale: a later step is already due
        elif reached_until is not None and step.at <= reached_until:
            decision = StepDecision.RUN
        else:
            decision = StepDecision.SKIP  # its time had passed when the workflow got here
        decisions.append((step, decision))
    return tuple(decisions)


def _step_order(step: Step) -> tuple[datetime, int]:
    return (step.at, STEP_TABLE[step.kind].story_order)


def _utc(instant: datetime, what: str) -> datetime:
    # Arithmetic on a datetime in a ZoneInfo zone is wall-clock arithmetic; in UTC it is
    # elapsed time, which is what durations mean here.
    if not isinstance(instant, datetime) or instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got {instant!r}")
    return instant.astimezone(UTC)
