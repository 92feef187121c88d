"""What crosses Temporal for a customer's ledger: the CustomerWorkflow's input, state,
signals and query, and the names of the ledger activities.

Every ledger operation is one command and one outcome of the domain (domain/ledger),
re-exported here under the same names, never copied: the command is the update's input
and the activity's input, the outcome the activity's result and the update's answer.
Activity names are constants so workflows never import activity code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from domain.ledger.commands import AssignmentOutcome as AssignmentOutcome
from domain.ledger.commands import AssignPayment as AssignPayment
from domain.ledger.commands import ChargeLateFee as ChargeLateFee
from domain.ledger.commands import EvaluateService as EvaluateService
from domain.ledger.commands import HoldOutcome as HoldOutcome
from domain.ledger.commands import InvoiceChange as InvoiceChange
from domain.ledger.commands import IssuedInvoice as IssuedInvoice
from domain.ledger.commands import IssueInvoice as IssueInvoice
from domain.ledger.commands import IssueOutcome as IssueOutcome
from domain.ledger.commands import LateFeeOutcome as LateFeeOutcome
from domain.ledger.commands import PlaceHold as PlaceHold
from domain.ledger.commands import ReactivateCustomer as ReactivateCustomer
from domain.ledger.commands import Reevaluate as Reevaluate
from domain.ledger.commands import ReevaluationOutcome as ReevaluationOutcome
from domain.ledger.commands import ReleaseHold as ReleaseHold
from domain.ledger.commands import ReversalOutcome as ReversalOutcome
from domain.ledger.commands import ReversePayment as ReversePayment
from domain.ledger.commands import ServiceOutcome as ServiceOutcome
from domain.ledger.commands import TerminateCustomer as TerminateCustomer
from domain.ledger.commands import TerminationOutcome as TerminationOutcome
from domain.ledger.commands import WaiveLateFee as WaiveLateFee
from domain.ledger.commands import WaiverOutcome as WaiverOutcome
from domain.ledger.effects import Followup as Followup
from domain.ledger.effects import InvoiceFacts as InvoiceFacts
from domain.ledger.effects import ServiceTransition as ServiceTransition
from domain.ledger.payments import Actor as Actor
from domain.ledger.payments import ApplyPayment as ApplyPayment
from domain.ledger.payments import PaymentOutcome as PaymentOutcome
from workflows.notifications.payloads import SendNotificationInput

ISSUE_INVOICE = "issue_invoice"
APPLY_PAYMENT = "apply_payment"
REVERSE_PAYMENT = "reverse_payment"
ASSIGN_UNMATCHED = "assign_unmatched"
REEVALUATE_CUSTOMER = "reevaluate_customer"
EVALUATE_SERVICE = "evaluate_service"
CHARGE_LATE_FEE = "charge_late_fee"
WAIVE_LATE_FEE = "waive_late_fee"
PLACE_HOLD = "place_hold"
RELEASE_HOLD = "release_hold"
TERMINATE_CUSTOMER = "terminate_customer"
REACTIVATE_CUSTOMER = "reactivate_customer"


@dataclass
class PostPaymentInput:
    """The payment a processor's own Temporal client sends: a decimal string. The workflow
    builds the ApplyPayment from it with ApplyPayment.build, the one check of a payment;
    nothing else reads it."""

    processor: str
    payment_id: str
    amount: str  # decimal string in ``currency``
    currency: str
    received_at: datetime | None = None  # None: when the customer workflow applies it
    body_hash: str = ""  # ignored: the ledger computes the canonical fingerprint
    source: str = "temporal"
    actor: Actor | None = None


@dataclass
class CustomerOperation:
    """A queued fire-and-forget operation (signal path) waiting for its turn."""

    kind: str  # "payment" | "evaluate_service" | "late_fee" | "end_hold" | "terminate"
    # ApplyPayment; PostPaymentInput in states recorded before it (and from the signal).
    payment: ApplyPayment | PostPaymentInput | None = None
    evaluate: EvaluateService | None = None
    fee: ChargeLateFee | None = None
    end_hold: ReleaseHold | None = None  # the hold's ``until`` passed (SPEC 2.11)
    terminate: TerminateCustomer | None = None  # terminate-after passed (SPEC 2.9)


@dataclass
class CustomerState:
    """Everything a CustomerWorkflow knows, carried whole from one run to the next."""

    customer_id: str
    # Work accepted (signal path) but not yet run, and effects not yet carried out.
    queue: list[CustomerOperation] = field(default_factory=list)
    followups: list[Followup] = field(default_factory=list)
    # Mails still in flight when the last run continued as new; sent again (the outbox
    # keeps each to one delivery). Recomputed at each hand-over.
    mails: list[SendNotificationInput] = field(default_factory=list)
    service_state: str = "unknown"
    class_name: str | None = None
    last_operation: str = "started"
    # The ``until`` of the hold in force (SPEC 2.11): the workflow's timer ends it then.
    # None: no hold, or one until released. Absent from states recorded before holds.
    hold_until: datetime | None = None
    on_hold: bool = False
    # When the suspension terminates the customer if still suspended (SPEC 2.9): the
    # workflow's timer asks the ledger then. None: no such suspension.
    terminate_at: datetime | None = None
    # Tests force a small value to exercise continue-as-new.
    max_history_events: int = 5_000


@dataclass
class CustomerWorkflowInput:
    customer_id: str
    # Set by continue-as-new; None for a fresh start.
    state: CustomerState | None = None
    # Only read when ``state`` is None (a fresh start; tests force a small value).
    max_history_events: int = 5_000

    def initial_state(self) -> CustomerState:
        if self.state is not None:
            return self.state
        return CustomerState(customer_id=self.customer_id,
                             max_history_events=self.max_history_events)


@dataclass
class CustomerStateQueryResult:
    customer_id: str
    service_state: str
    queued: int
    followups: int
    last_operation: str
    on_hold: bool = False
    hold_until: datetime | None = None
    terminate_at: datetime | None = None
