"""A class's whole collection policy as data (SPEC 2.5, 2.9, 2.10).

The schedule of SPEC 2.5 (reminders, grace, warning), the past-due chain of SPEC 2.9
(late fee and when it is charged, termination) and the working time of SPEC 2.10, with
the class's time zone they are read in. ``domain.collection.timeline`` turns a policy and
an invoice's D into its timeline; nothing else interprets these fields.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from domain.collection.evaluation import drives_dunning
from domain.collection.schedule import Policy
from domain.collection.working_time import WorkingTime
from domain.hold import Hold, held_step
from domain.money import Currency, format_amount, parse_amount
from domain.when import format_duration

# A percentage is kept in basis points (hundredths of a percent): "2%" is 200, "2.5%" 250.
_PERCENT = re.compile(r"([0-9]{1,3})(?:\.([0-9]{1,2}))?\s*%")
MAX_BASIS_POINTS = 10_000


@dataclass(frozen=True)
class LateFee:
    """A fixed amount (minor units of the class currency) or a percentage (basis points) of
    the invoice's remaining amount when it is charged; exactly one of the two."""

    fixed: int | None = None
    basis_points: int | None = None

    def __post_init__(self) -> None:
        if (self.fixed is None) == (self.basis_points is None):
            raise ValueError("a late fee is either a fixed amount or a percentage")
        if self.fixed is not None and self.fixed <= 0:
            raise ValueError("a fixed late fee must be more than 0")
        if self.basis_points is not None and not 0 < self.basis_points <= MAX_BASIS_POINTS:
            raise ValueError("a late fee percentage must be more than 0% and at most 100%")

    def amount(self, remaining: int) -> int:
        """The fee on an invoice with ``remaining`` open (SPEC 2.9: rounded half-up)."""
        if remaining < 0:
            raise ValueError("remaining amount must not be negative")
        if self.fixed is not None:
            return self.fixed
        assert self.basis_points is not None
        return (remaining * self.basis_points + MAX_BASIS_POINTS // 2) // MAX_BASIS_POINTS

    def describe(self, cur: Currency) -> str:
        if self.fixed is not None:
            return f"{format_amount(self.fixed, cur)} {cur.code}"
        return f"{format_percent(self.basis_points or 0)} of the remaining amount"


def parse_late_fee(text: str, cur: Currency) -> LateFee:
    """"5.00" (fixed, in the class currency) or "2%" / "2.5%" of the remaining amount."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("late fee is empty; use e.g. 5.00 or 2%")
    value = text.strip()
    if value.endswith("%"):
        match = _PERCENT.fullmatch(value)
        if match is None:
            raise ValueError(f"late fee '{text}' is not a percentage like 2% or 2.5%")
        points = int(match[1]) * 100 + int((match[2] or "0").ljust(2, "0"))
        return LateFee(basis_points=points)
    return LateFee(fixed=parse_amount(value, cur, allow_zero=False))


def format_percent(basis_points: int) -> str:
    whole, part = divmod(basis_points, 100)
    return f"{whole}%" if not part else f"{whole}.{part:02d}".rstrip("0") + "%"


def format_late_fee(fee: LateFee, cur: Currency) -> str:
    """The ``--late-fee`` form that reads back as ``fee``."""
    if fee.fixed is not None:
        return format_amount(fee.fixed, cur)
    return format_percent(fee.basis_points or 0)


@dataclass(frozen=True)
class ClassPolicy:
    """Everything that decides when an invoice's steps happen, for one class."""

    schedule: Policy = field(default_factory=Policy)
    timezone: str = "UTC"
    working: WorkingTime = field(default_factory=WorkingTime)
    late_fee: LateFee | None = None
    late_fee_after: timedelta = timedelta(0)
    terminate_after: timedelta | None = None

    def __post_init__(self) -> None:
        if self.late_fee_after < timedelta(0) or self.late_fee_after.microseconds:
            raise ValueError("late-fee-after must be a whole, non-negative number of seconds")
        if self.terminate_after is not None and (
                self.terminate_after <= timedelta(0) or self.terminate_after.microseconds):
            raise ValueError("terminate-after must be a whole number of seconds above 0")


@dataclass(frozen=True)
class LateFeeDecision:
    amount: int  # 0: no fee
    reason: str


def decide_late_fee(policy: ClassPolicy, *, collection_status: str, remaining: int,
                    charged_before: bool, hold: Hold | None = None) -> LateFeeDecision:
    """SPEC 2.9: at D + late-fee-after, once per invoice, only if the invoice is then
    ``collect`` with something remaining; a percentage is of that remaining amount. Not
    while the customer is on hold (SPEC 2.11), and not later either (2.3's rule)."""
    if charged_before:
        return LateFeeDecision(0, "already charged once")
    if (held := held_step(hold, "late_fee")) is not None:
        return LateFeeDecision(0, held)
    if policy.late_fee is None:
        return LateFeeDecision(0, "the class has no late fee")
    if not drives_dunning(collection_status, remaining):
        return LateFeeDecision(0, f"{collection_status} with {remaining} remaining")
    amount = policy.late_fee.amount(remaining)
    if amount == 0:
        return LateFeeDecision(0, "the percentage of what remains rounds to 0")
    return LateFeeDecision(amount, "charged")


@dataclass(frozen=True)
class TerminationDecision:
    terminate: bool
    due_at: datetime | None  # not yet: when it will be due; None: nothing to wait for
    reason: str


def decide_termination(policy: ClassPolicy, *, service_state: str,
                       suspended_since: datetime | None, hold: Hold | None,
                       now: datetime) -> TerminationDecision:
    """SPEC 2.9: a customer whose service has been suspended without a break for the
    class's terminate-after becomes ``terminated``; never while on hold (SPEC 2.11), and a
    termination that fell due during a hold happens when it ends (2.3's rule, like a
    suspension). ``suspended_since``: when the service last changed to suspended."""
    if policy.terminate_after is None:
        return TerminationDecision(False, None, "the class never terminates")
    if service_state != "suspended" or suspended_since is None:
        return TerminationDecision(False, None, f"service {service_state}")
    if (held := held_step(hold, "termination")) is not None:
        return TerminationDecision(False, None, held)
    due = suspended_since + policy.terminate_after
    since = suspended_since.astimezone(UTC).isoformat()
    if now < due:
        return TerminationDecision(False, due, f"suspended since {since}; terminated at "
                                   f"{due.astimezone(UTC).isoformat()} if still suspended")
    return TerminationDecision(True, None, f"suspended without a break since {since} "
                               f"(terminate after {format_duration(policy.terminate_after)})")
