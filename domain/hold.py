"""Hold: finance pauses a customer's collection (SPEC 2.11).

A hold is in force from the moment it is placed until it is released or its ``until``
passes (the customer's workflow owns that timer and ends it; nothing compares the
database clock). While it is in force, ``pauses`` says which dunning actions it stops:
reminder, overdue and warning mails, late fees, suspension and termination. Invoices,
payments and reversals go on as usual, and a suspended customer stays suspended unless the
hold was placed with ``resume`` (the service decision, ``decide_service``, takes the hold).
When it ends, the invoices' steps continue from that moment by SPEC 2.3's rule: steps
whose time passed while held are not done late, a suspension that is due happens at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

# What a hold stops (SPEC 2.11); everything else works as usual.
PAUSED = frozenset({"due_reminder", "overdue", "suspension_warning", "late_fee",
                    "suspension", "termination"})
# The service event's reason when a hold placed with resume brings the service back.
RESUME_REASON = "hold"


@dataclass(frozen=True)
class Hold:
    """A hold in force: since ``placed_at``, until ``until`` (None: until released)."""

    placed_at: datetime
    until: datetime | None
    reason: str
    actor: str
    resume: bool = False

    def __post_init__(self) -> None:
        check_hold(self.placed_at, self.until, self.reason)

    def describe(self) -> str:
        """Why a step is held, for the invoice's query and the UI."""
        until = ("until released" if self.until is None
                 else f"until {self.until.astimezone(UTC).isoformat()}")
        return f"customer on hold {until} ({self.reason}, by {self.actor})"


def check_hold(placed_at: datetime, until: datetime | None, reason: str) -> None:
    """A hold needs a reason, and an ``until`` after the moment it is placed."""
    if not reason or not reason.strip():
        raise ValueError("a hold needs a reason")
    if "\r" in reason or "\n" in reason:
        raise ValueError("a hold's reason is one line")
    for instant in (placed_at, until):
        if instant is not None and (instant.tzinfo is None or instant.utcoffset() is None):
            raise ValueError("a hold's instants are timezone-aware")
    if until is not None and until <= placed_at:
        raise ValueError(f"--until {until.astimezone(UTC).isoformat()} has already passed")


def pauses(hold: Hold | None, action: str) -> bool:
    """Does the hold in force (None: no hold) stop ``action`` (a step kind, ``late_fee``,
    ``suspension`` or ``termination``)?"""
    return hold is not None and action in PAUSED


def held_step(hold: Hold | None, action: str) -> str | None:
    """An invoice step's outcome when the hold stops it (None: not held)."""
    return f"held: {hold.describe()}" if hold is not None and pauses(hold, action) else None


def ended(hold: Hold | None, now: datetime) -> bool:
    """Has a hold with an ``until`` reached it at ``now``? (Asked by the customer's
    workflow when its timer fires; a released hold is no longer stored.)"""
    return hold is not None and hold.until is not None and now >= hold.until
