"""An invoice's timeline under its class's policy: every step's nominal time, the time it
actually happens once working time is applied (SPEC 2.10), and why it moved.

The one calculator of the policy: the invoice's workflow waits for the times of
``working_steps``; ``dunning class show`` prints ``timeline`` for a sample due date; the
status document shows the moved suspension from ``suspension_time``.

SPEC 2.10 as applied here, with D never moving:
- the suspension at S outside working time moves to the next start of working time S';
- the warning is due ``warning`` before S'; outside working time it moves to the start of
  the last working period before that instant (earlier, never later);
- reminders and the overdue notice outside working time move to the next start of
  working time;
- event mails (issued, receipts, service changes, fees, termination) go at once, so they
  have no place here; the late fee is charged at D + late-fee-after, which does not move.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from domain.collection.policy import ClassPolicy
from domain.collection.schedule import Step, StepDecision, decide_steps, plan_steps
from domain.collection.working_time import Calendar
from domain.notifications.catalog import STEP_TABLE, StepKind
from domain.when import format_duration, zone_of

LATE_FEE = StepKind.LATE_FEE.value
TERMINATION = "termination"


@dataclass(frozen=True)
class TimedStep:
    """One entry of the timeline. ``at`` is when it happens; ``nominal`` when SPEC 2.5 or
    2.9 alone would put it; ``why`` says why they differ (None when they do not)."""

    kind: str  # a StepKind value, LATE_FEE or TERMINATION
    key: str
    nominal: datetime
    at: datetime
    why: str | None
    # Relative to the "now" the timeline was asked for: "upcoming", "runs at once" or
    # "skipped: its time had passed" (SPEC 2.5); None when no "now" was given.
    decision: str | None = None

    @property
    def moved(self) -> bool:
        return self.at != self.nominal

    def step(self) -> Step:
        """The step the invoice's workflow waits for (every kind but the termination)."""
        return Step(kind=StepKind(self.kind), key=self.key, at=self.at)


def suspension_time(policy: ClassPolicy, overdue_at: datetime) -> tuple[datetime, str | None]:
    """S' and why it differs from S = D + grace (None when S is working time)."""
    calendar = _calendar(policy)
    nominal = _utc(overdue_at) + policy.schedule.grace
    moved = calendar.next_start(nominal)
    if moved == nominal:
        return nominal, None
    return moved, (f"S {calendar.why_outside(nominal)}; moved to the next start of working "
                   f"time, {calendar.describe(moved)}")


def working_steps(policy: ClassPolicy, overdue_at: datetime) -> tuple[TimedStep, ...]:
    """The steps the invoice's workflow waits for, in the order they happen: SPEC 2.5's
    with working time applied, and the late fee (SPEC 2.9) when the class has one."""
    calendar = _calendar(policy)
    suspend_at, suspension_why = suspension_time(policy, overdue_at)
    timed = []
    for step in plan_steps(_utc(overdue_at), policy.schedule):
        if step.kind is StepKind.SUSPENSION:
            timed.append(TimedStep(step.kind.value, step.key, step.at, suspend_at,
                                   suspension_why))
        elif step.kind is StepKind.SUSPENSION_WARNING:
            timed.append(_warning(calendar, step, suspend_at, policy))
        else:
            at = calendar.next_start(step.at)
            why = None if at == step.at else (
                f"{calendar.why_outside(step.at)}; moved to the next start of working time, "
                f"{calendar.describe(at)}")
            timed.append(TimedStep(step.kind.value, step.key, step.at, at, why))
    if policy.late_fee is not None:
        at = _utc(overdue_at) + policy.late_fee_after
        timed.append(TimedStep(LATE_FEE, LATE_FEE, at, at, None))
    return tuple(sorted(timed, key=_order))


def timeline(policy: ClassPolicy, overdue_at: datetime,
             now: datetime | None = None) -> tuple[TimedStep, ...]:
    """Every step of the policy for an invoice overdue from D = ``overdue_at``: the SPEC 2.5
    steps of ``working_steps``, the late fee and the termination when the policy has them.

    With ``now``, each entry says what happens to it as of then: SPEC 2.5's rule for an
    invoice whose workflow reaches its steps at ``now`` (``decide_steps``).
    """
    entries = list(working_steps(policy, overdue_at))
    if policy.terminate_after is not None:
        suspend_at = suspension_time(policy, overdue_at)[0]
        at = suspend_at + policy.terminate_after
        entries.append(TimedStep(
            TERMINATION, TERMINATION, at, at,
            f"{format_duration(policy.terminate_after)} after the suspension, if the "
            "service stays suspended without a break"))
    entries.sort(key=_order)
    if now is None:
        return tuple(entries)
    return tuple(_decided(entries, _utc(now)))


# --- helpers ---------------------------------------------------------------------------


def _warning(calendar: Calendar, step: Step, suspend_at: datetime,
             policy: ClassPolicy) -> TimedStep:
    due = suspend_at - policy.schedule.warning
    at = calendar.last_start_before(due)
    before = f"{format_duration(policy.schedule.warning)} before S'"
    if at != due:
        why = (f"due {before} at {calendar.describe(due)}, which "
               f"{calendar.outside_because(due)}; moved to the start of the last working "
               f"period before it, {calendar.describe(at)}")
    elif due != step.at:
        why = f"due {before} ({calendar.describe(suspend_at)}), as the suspension moved"
    else:
        why = None
    return TimedStep(step.kind.value, step.key, step.at, at, why)


def _decided(entries: list[TimedStep], now: datetime) -> list[TimedStep]:
    steps = [e.step() for e in entries if e.kind != TERMINATION]
    decided = {step.key: decision for step, decision in decide_steps(steps, now, None)}
    out = []
    for entry in entries:
        if entry.key in decided:
            decision = ("runs at once" if decided[entry.key] is StepDecision.RUN
                        else "skipped: its time had passed")
        elif entry.at > now:
            decision = "upcoming"
        else:
            decision = "due at once"  # the fee or termination, whose time has come
        out.append(TimedStep(entry.kind, entry.key, entry.nominal, entry.at, entry.why,
                             decision))
    return out


# Same-instant entries in the order of the story told to the customer (STEP_TABLE), the
# termination last.
_EXTRA_ORDER = {TERMINATION: 100}


def _order(entry: TimedStep) -> tuple[datetime, int]:
    rank = _EXTRA_ORDER.get(entry.kind)
    if rank is None:
        rank = STEP_TABLE[StepKind(entry.kind)].story_order * 10
    return (entry.at, rank)


def _calendar(policy: ClassPolicy) -> Calendar:
    return Calendar(policy.working, zone_of(policy.timezone))


def _utc(instant: datetime) -> datetime:
    if not isinstance(instant, datetime) or instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"instant must be timezone-aware, got {instant!r}")
    return instant.astimezone(UTC)
