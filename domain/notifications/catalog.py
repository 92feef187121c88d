"""Every mail the product sends, as data: SPEC 2.5's step table, the notification kinds and
the key that keeps each mail to one delivery (SPEC 2.6).

The invoice's workflow walks ``STEP_TABLE``; ``domain.ledger.effects`` picks the service
and payment mails; the outbox refuses a kind not in ``NOTIFICATION_KINDS``. Keys are built
with the one quoting rule of ``domain.ids``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from domain.ids import join

# Every kind of mail, each with a template per language (templates/<lang>/<kind>.*).
NOTIFICATION_KINDS: tuple[str, ...] = (
    "invoice_issued",
    "due_reminder",
    "overdue",
    "suspension_warning",
    "service_suspended",
    "service_resumed",
    "payment_received",
    "late_fee_charged",  # SPEC 2.9: an event mail, sent at once when a fee is charged
    "service_terminated",  # SPEC 2.9: an event mail, sent at once on termination
)

# The mail of each service state a transition leads to (SPEC 2.4, 2.6).
SERVICE_MAIL = {"suspended": "service_suspended", "active": "service_resumed",
                "terminated": "service_terminated"}


class StepKind(StrEnum):
    DUE_REMINDER = "due_reminder"
    OVERDUE = "overdue"
    SUSPENSION_WARNING = "suspension_warning"
    SUSPENSION = "suspension"
    LATE_FEE = "late_fee"  # SPEC 2.9: at D + late-fee-after, when the class has a fee


@dataclass(frozen=True)
class StepRule:
    """One row of SPEC 2.5's table. Every step but the suspension itself acts only when
    the invoice drives dunning at that moment (``evaluation.drives_dunning``: collect and
    remaining > 0); the suspension time is recorded whatever the status, and the
    customer's service decision applies that condition (SPEC 2.4)."""

    kind: StepKind
    mail: str | None  # the notification it sends; None for the suspension and the fee
    runs_if_late: bool  # SPEC 2.5: runs at once even when its time had passed
    # When two steps fall on the same instant they run in the order of the story told to
    # the customer: "due soon", "overdue", "will be suspended", "suspended". (With the
    # default policy the warning comes a day *before* the overdue notice.)
    story_order: int


STEP_TABLE: dict[StepKind, StepRule] = {
    StepKind.DUE_REMINDER: StepRule(StepKind.DUE_REMINDER, "due_reminder",
                                    runs_if_late=False, story_order=0),
    # An invoice entered after its due date becomes overdue, and suspends, immediately.
    StepKind.OVERDUE: StepRule(StepKind.OVERDUE, "overdue", runs_if_late=True, story_order=1),
    # The fee is charged by the customer's ledger, which sends its mail (late_fee_charged);
    # like the reminders it is not charged late (SPEC 2.3: passed steps are not done late).
    StepKind.LATE_FEE: StepRule(StepKind.LATE_FEE, None, runs_if_late=False, story_order=2),
    StepKind.SUSPENSION_WARNING: StepRule(StepKind.SUSPENSION_WARNING, "suspension_warning",
                                          runs_if_late=False, story_order=3),
    StepKind.SUSPENSION: StepRule(StepKind.SUSPENSION, None, runs_if_late=True,
                                  story_order=4),
}


# --- keys (the outbox's at-most-once key, SPEC 2.6) -------------------------------------


def invoice_notification_key(customer_id: str, number: str, step: str) -> str:
    """``step`` is ``invoice_issued`` or a step key of the schedule (``due_reminder:3d``)."""
    # The step key is ours (never user input) and may itself hold ":" separators.
    return f"{join('invoice', customer_id, number)}:{step}"


def payment_receipt_key(processor: str, payment_id: str) -> str:
    return f"{join('payment', processor, payment_id)}:payment_received"


def service_notification_key(customer_id: str, event_id: int, kind: str) -> str:
    return f"{join('service', customer_id, str(event_id))}:{kind}"


def resend_key(root_key: str, number: int) -> str:
    # The root key is already built by the rules above.
    return f"{root_key}:resend:{number}"
