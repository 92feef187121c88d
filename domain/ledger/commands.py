"""The ledger operations other than a payment, each as one command and one outcome.

Like ``ApplyPayment`` (domain/ledger/payments.py), each command is frozen, in integer
minor units, and built once at the edge, where its input is validated; it is the customer
workflow's update input, the ledger activity's input and what the transaction
(db/ledger/transactions.py) takes. Each outcome is what the activity answers and the update hands
back. ``now`` is stamped by the customer's workflow (``at``), so time-skipping tests and
production agree on when a change happened. Pure standard library: these cross Temporal.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Self

from domain.hold import Hold
from domain.ledger.effects import InvoiceFacts, ServiceTransition
from domain.ledger.payments import Actor


class InvalidCommand(ValueError):
    """A command refused before anything is recorded; the message is for the caller,
    ``field`` the input it is about (the API reports it there)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class _Stamped:
    """``at(now)``: the command as the customer's workflow runs it at ``now``."""

    def at(self, now: datetime) -> Self:
        return replace(self, now=now)  # type: ignore[type-var]


# --- issue an invoice ------------------------------------------------------------------


@dataclass(frozen=True)
class IssueInvoice:
    """Record one invoice. Built at the edge by ``domain.collection.invoicing.issue_command``,
    which computes D and S' from the class's policy (``domain.collection.timeline``), so the
    ledger and the invoice's workflow agree on them."""

    customer_id: str
    number: str
    new_charges: int                  # minor units, >= 0
    issued_at: datetime               # aware UTC
    due_text: str                     # as given ("2024-06-30" or an ISO datetime)
    overdue_at: datetime              # D
    suspend_at: datetime              # S' (S = D + grace, moved by working time)
    actor: Actor | None = None        # given when a person issues it by hand
    # When working time moved S to S' (SPEC 2.10): S and why; None when it did not move.
    suspension_moved_from: datetime | None = None
    suspension_moved_why: str | None = None


@dataclass
class IssuedInvoice:
    """An invoice as the ledger recorded it (amounts in minor units)."""

    customer_id: str
    number: str
    new_charges: int
    previous_balance: int
    amount_due: int
    remaining: int
    collection_status: str
    payment_status: str
    issued_at: datetime
    overdue_at: datetime
    suspend_at: datetime


@dataclass
class IssueOutcome:
    """``created``; ``exists`` (same data, nothing changed); ``conflict`` (other data,
    nothing written: ``invoice`` is the stored one, ``conflict_fields`` what differs).
    ``changed``: the other invoices a back-dated one re-evaluated. ``workflow`` is set by
    the customer's workflow once the invoice's own workflow runs ("started" | "already
    started"; None for a conflict)."""

    status: str
    invoice: IssuedInvoice
    service_state: str
    balance: int
    class_name: str = ""
    conflict_fields: list[str] = field(default_factory=list)
    changed: list[InvoiceFacts] = field(default_factory=list)
    transition: ServiceTransition | None = None
    workflow: str | None = None


# --- reverse a payment -----------------------------------------------------------------


@dataclass(frozen=True)
class ReversePayment(_Stamped):
    customer_id: str
    processor: str
    payment_id: str
    reason: str | None = None         # e.g. "chargeback"; also the service event's reason
    actor: Actor | None = None
    now: datetime | None = None


@dataclass
class ReversalOutcome:
    """``reversed``; ``already_reversed`` (nothing changed)."""

    status: str
    service_state: str
    service_before: str
    balance: int
    changed: list[InvoiceFacts] = field(default_factory=list)
    transition: ServiceTransition | None = None
    class_name: str = ""


# --- assign an unmatched payment -------------------------------------------------------


@dataclass(frozen=True)
class AssignPayment(_Stamped):
    """Finance applies an unmatched payment to this customer."""

    customer_id: str
    processor: str
    payment_id: str
    actor: Actor | None = None
    now: datetime | None = None


@dataclass
class AssignmentOutcome:
    """``assigned``; ``already_assigned`` (to this customer: nothing changed)."""

    status: str
    service_state: str
    balance: int
    changed: list[InvoiceFacts] = field(default_factory=list)
    transition: ServiceTransition | None = None
    payment_receipts: bool = True
    class_name: str = ""


# --- re-evaluate (finance re-run) ------------------------------------------------------


@dataclass(frozen=True)
class Reevaluate(_Stamped):
    customer_id: str
    dry_run: bool = False
    reason: str = "re-run"
    actor: Actor | None = None        # audited (not in a dry run)
    now: datetime | None = None


@dataclass
class InvoiceChange:
    """One invoice's collection status before and after a re-run."""

    number: str
    before_status: str | None
    after_status: str
    remaining: int


@dataclass
class ReevaluationOutcome:
    customer_id: str
    dry_run: bool
    changes: list[InvoiceChange]
    service_before: str
    service_after: str
    balance: int = 0
    changed: list[InvoiceFacts] = field(default_factory=list)
    transition: ServiceTransition | None = None
    class_name: str = ""

    @property
    def service_state(self) -> str:
        return self.service_after


# --- the service decision --------------------------------------------------------------


@dataclass(frozen=True)
class EvaluateService(_Stamped):
    """Decide the customer's service state again (SPEC 2.4), e.g. when an invoice reached
    its suspension time; also the payload of the ``evaluate_service`` signal."""

    customer_id: str
    reason: str
    invoice_number: str | None = None
    now: datetime | None = None


@dataclass
class ServiceOutcome:
    service_state: str
    service_before: str
    balance: int
    transition: ServiceTransition | None = None
    class_name: str = ""
    changed: list[InvoiceFacts] = field(default_factory=list)


# --- an invoice reaches its suspension time --------------------------------------------


@dataclass(frozen=True)
class ReachSuspension:
    """Record that the invoice is past S (its workflow's timer fired at ``at``)."""

    customer_id: str
    invoice_number: str
    at: datetime


@dataclass
class SuspensionReached:
    recorded: bool


LedgerOutcome = (IssueOutcome | ReversalOutcome | AssignmentOutcome | ReevaluationOutcome
                 | ServiceOutcome)


# --- late fees (SPEC 2.9) --------------------------------------------------------------


@dataclass(frozen=True)
class ChargeLateFee(_Stamped):
    """Charge the invoice's late fee if it is due now (its workflow asks at D +
    late-fee-after); the transaction decides, under the customer's lock, with
    ``domain.collection.policy.decide_late_fee``."""

    customer_id: str
    invoice_number: str
    now: datetime | None = None
    # The fee's instant in the ledger: D + late-fee-after, the step's planned time (SPEC
    # 2.9 "from that instant"); None: ``now``.
    charged_at: datetime | None = None


@dataclass
class LateFeeOutcome:
    """``charged``; ``already_charged`` (once per invoice, even after a waiver);
    ``not_due`` (no fee in the policy, or the invoice does not drive dunning then)."""

    status: str
    invoice_number: str
    amount: int
    reason: str
    service_state: str
    balance: int
    changed: list[InvoiceFacts] = field(default_factory=list)
    transition: ServiceTransition | None = None
    class_name: str = ""


@dataclass(frozen=True)
class WaiveLateFee(_Stamped):
    """Finance waives an invoice's fee (audited): the ledger is then exactly as if it had
    never been charged, and re-evaluated."""

    customer_id: str
    invoice_number: str
    actor: Actor | None = None
    now: datetime | None = None


@dataclass
class WaiverOutcome:
    """``waived``; ``not_charged`` (nothing to waive); ``already_waived``."""

    status: str
    invoice_number: str
    amount: int
    service_state: str
    balance: int
    changed: list[InvoiceFacts] = field(default_factory=list)
    transition: ServiceTransition | None = None
    class_name: str = ""


# --- hold (SPEC 2.11) ------------------------------------------------------------------


@dataclass(frozen=True)
class PlaceHold(_Stamped):
    """Finance puts the customer on hold (audited), from ``now`` until ``until`` (None:
    until released); ``resume``: a suspended customer resumes at once (reason "hold").
    Placing a hold on a customer already held replaces it."""

    customer_id: str
    reason: str
    until: datetime | None = None
    resume: bool = False
    actor: Actor | None = None
    now: datetime | None = None


@dataclass(frozen=True)
class ReleaseHold(_Stamped):
    """End the customer's hold: finance releases it (audited), or the customer's workflow
    ends it when ``until`` passes (``expired``, with the ``until`` its timer was for: a
    hold replaced meanwhile is not ended). Then a suspension that is due happens at once."""

    customer_id: str
    actor: Actor | None = None
    expired: bool = False
    until: datetime | None = None
    now: datetime | None = None


@dataclass
class HoldOutcome:
    """``placed``, ``replaced``; ``released``, ``ended``; ``not_held`` (nothing changed).
    ``hold``: the hold in force after it (None: none). ``changed``: every open invoice,
    so each invoice's workflow hears of the hold."""

    status: str
    hold: Hold | None
    service_state: str
    service_before: str
    balance: int
    changed: list[InvoiceFacts] = field(default_factory=list)
    transition: ServiceTransition | None = None
    class_name: str = ""
    # When the hold ended with the service still suspended (SPEC 2.9): when it terminates.
    terminate_at: datetime | None = None


# --- termination (SPEC 2.9) ------------------------------------------------------------


@dataclass(frozen=True)
class TerminateCustomer(_Stamped):
    """The customer's workflow's timer for a suspension's terminate-after fired: the
    transaction decides (``domain.collection.policy.decide_termination``)."""

    customer_id: str
    now: datetime | None = None


@dataclass(frozen=True)
class ReactivateCustomer(_Stamped):
    """Finance reactivates a terminated customer (audited): SPEC 2.4 applies again."""

    customer_id: str
    actor: Actor | None = None
    now: datetime | None = None


@dataclass
class TerminationOutcome:
    """``terminated``; ``not_due`` (``terminate_at``: when it will be, if still suspended;
    None: nothing to wait for, ``reason`` says why); ``reactivated``; ``not_terminated``.
    ``changed``: every open invoice (their workflows end on termination, and come back
    on reactivation)."""

    status: str
    reason: str
    service_state: str
    service_before: str
    balance: int
    terminate_at: datetime | None = None
    changed: list[InvoiceFacts] = field(default_factory=list)
    transition: ServiceTransition | None = None
    class_name: str = ""
