"""Everything that crosses Temporal: workflow, activity, signal, update and query payloads.

One dataclass in and one out for each call (``XxxInput``/``XxxResult``). Money is integer
minor units plus the currency code, or decimal strings at the edges; instants are aware
UTC datetimes. Activity names are constants so workflows never import activity code
(which pulls in the database driver and the mailer).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from domain.ids import customer_workflow_id as customer_workflow_id
from domain.ids import invoice_workflow_id as invoice_workflow_id
from domain.ids import payment_update_id as payment_update_id

# Defined once in the domain and re-exported (``as``), never copied: the outcome of a
# ledger change, and the ids (domain.ids) for the callers that import them here.
from domain.ledger.effects import Followup as Followup
from domain.ledger.effects import InvoiceFacts as InvoiceFacts
from domain.ledger.effects import ServiceTransition as ServiceTransition
from domain.ledger.payments import Actor as Actor
from domain.ledger.payments import ApplyPayment as ApplyPayment
from domain.ledger.payments import PaymentOutcome as PaymentOutcome

# Activity names (defined in activities/, referenced by name from workflows/).
APPLY_PAYMENT = "apply_payment"
REVERSE_PAYMENT = "reverse_payment"
ASSIGN_UNMATCHED = "assign_unmatched"
REEVALUATE_CUSTOMER = "reevaluate_customer"
EVALUATE_SERVICE = "evaluate_service"
CHECK_INVOICE = "check_invoice"
REOPEN_INVOICE = "reopen_invoice"
REACH_SUSPENSION = "reach_suspension"
SEND_NOTIFICATION = "send_notification"
EXPIRE_NOTIFICATION = "expire_notification"
APPLY_SERVICE_STATE = "apply_service_state"
LIST_CUSTOMERS = "list_customers_page"
REEVALUATE_VIA_WORKFLOW = "reevaluate_via_customer_workflow"
ISSUE_INVOICE = "issue_invoice"
START_INVOICE_WORKFLOW = "start_invoice_workflow"


# --- facts about invoices --------------------------------------------------------------


@dataclass
class PlannedStep:
    kind: str
    key: str
    at: datetime


# --- InvoiceWorkflow -------------------------------------------------------------------


@dataclass
class InvoiceWorkflowInput:
    customer_id: str
    invoice_number: str
    class_name: str
    currency: str
    issued_at: datetime
    overdue_at: datetime
    suspend_at: datetime
    steps: list[PlannedStep]
    facts: InvoiceFacts


@dataclass
class InvoiceWorkflowResult:
    number: str
    outcome: str  # "paid" (the only way an invoice's workflow ends)
    steps: dict[str, str]


@dataclass
class InvoiceReevaluatedSignal:
    facts: InvoiceFacts
    service_state: str | None = None


@dataclass
class InvoiceStatusQueryResult:
    state: str
    remaining: int
    currency: str
    collection_status: str
    payment_status: str
    next_step: str | None
    next_step_at: datetime | None
    reason: str
    steps: dict[str, str]


# --- CustomerWorkflow ------------------------------------------------------------------


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
    # Tests force a small value to exercise continue-as-new.
    max_history_events: int = 5_000


@dataclass
class CustomerWorkflowInput:
    customer_id: str
    # Set by continue-as-new; None for a fresh start (and in histories recorded before it).
    state: CustomerState | None = None
    # Only read when ``state`` is None: a fresh start's options, and the flat hand-over of
    # runs recorded before CustomerState existed (their histories must still replay).
    pending: list[CustomerOperation] = field(default_factory=list)
    followups: list[Followup] = field(default_factory=list)
    max_history_events: int = 5_000
    mails: list[SendNotificationInput] = field(default_factory=list)
    service_state: str = "unknown"
    class_name: str | None = None

    def initial_state(self) -> CustomerState:
        if self.state is not None:
            return self.state
        return CustomerState(
            customer_id=self.customer_id, queue=list(self.pending),
            followups=list(self.followups), mails=list(self.mails),
            service_state=self.service_state, class_name=self.class_name,
            max_history_events=self.max_history_events,
        )


@dataclass
class PostPaymentInput:
    """The payment a processor's own Temporal client sends (and what histories recorded
    before ApplyPayment): a decimal string. The workflow builds the ApplyPayment from it
    with ApplyPayment.build, the one check of a payment; nothing else reads it."""

    processor: str
    payment_id: str
    amount: str  # decimal string in ``currency``
    currency: str
    received_at: datetime | None = None  # None: when the customer workflow applies it
    body_hash: str = ""  # ignored: the ledger computes the canonical fingerprint
    source: str = "temporal"
    actor: Actor | None = None


@dataclass
class PostPaymentResult:
    status: str  # "accepted" | "duplicate" | "conflict"
    processor: str
    payment_id: str
    service_state: str
    balance: int


@dataclass
class ReversePaymentInput:
    processor: str
    payment_id: str
    actor: Actor | None = None


@dataclass
class ReversePaymentResult:
    status: str  # "reversed" | "already_reversed"
    service_state: str
    balance: int


@dataclass
class AssignPaymentInput:
    """Finance assigns an unmatched payment to this customer."""

    processor: str
    payment_id: str
    actor: Actor | None = None


@dataclass
class ReevaluateInput:
    dry_run: bool = False
    actor: Actor | None = None


@dataclass
class IssueInvoiceInput:
    """An invoice to record, validated at the edge (amounts in minor units, aware UTC
    instants computed there from the class's time zone and schedule)."""

    number: str
    new_charges: int
    issued_at: datetime
    due_text: str
    overdue_at: datetime
    suspend_at: datetime
    actor: Actor | None = None


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
class IssueInvoiceResult:
    """``created``; ``exists`` (same data, nothing changed); ``conflict`` (other data,
    nothing written: ``invoice`` is the stored one, ``conflict_fields`` what differs).
    ``workflow``: "started" | "already started" (None for a conflict)."""

    status: str
    conflict_fields: list[str]
    invoice: IssuedInvoice
    service_state: str
    workflow: str | None


@dataclass
class InvoiceChange:
    number: str
    before_status: str | None
    after_status: str
    remaining: int


@dataclass
class ReevaluateResult:
    customer_id: str
    dry_run: bool
    changes: list[InvoiceChange]
    service_before: str
    service_after: str


@dataclass
class EvaluateServiceSignal:
    reason: str
    invoice_number: str | None = None


@dataclass
class CustomerOperation:
    """A queued fire-and-forget operation (signal path) waiting for its turn."""

    kind: str  # "payment" | "evaluate_service"
    # ApplyPayment; PostPaymentInput in states recorded before it (and from the signal).
    payment: ApplyPayment | PostPaymentInput | None = None
    evaluate: EvaluateServiceSignal | None = None


@dataclass
class CustomerStateQueryResult:
    customer_id: str
    service_state: str
    queued: int
    followups: int
    last_operation: str


# --- activities ------------------------------------------------------------------------


@dataclass
class LedgerActivityInput:
    """Input of the ledger activities: one customer-level transaction."""

    customer_id: str
    now: datetime  # the workflow's instant (time-skipping tests and production agree)
    reversal: ReversePaymentInput | None = None
    assignment: AssignPaymentInput | None = None
    dry_run: bool = False
    reason: str = ""
    actor: Actor | None = None
    issue: IssueInvoiceInput | None = None


@dataclass
class LedgerActivityResult:
    status: str
    changed: list[InvoiceFacts]
    transition: ServiceTransition | None
    service_state: str
    service_before: str
    balance: int
    changes: list[InvoiceChange] = field(default_factory=list)
    payment_receipts: bool = True
    class_name: str = ""
    # Set by issue_invoice only.
    invoice: IssuedInvoice | None = None
    conflict_fields: list[str] = field(default_factory=list)


@dataclass
class CheckInvoiceInput:
    customer_id: str
    invoice_number: str


@dataclass
class ReopenInvoiceInput:
    customer_id: str
    invoice_number: str


@dataclass
class ReopenInvoiceResult:
    started: bool


@dataclass
class StartInvoiceWorkflowInput:
    customer_id: str
    invoice_number: str


@dataclass
class StartInvoiceWorkflowResult:
    workflow: str  # "started" | "already started"


@dataclass
class ReachSuspensionInput:
    customer_id: str
    invoice_number: str
    at: datetime


@dataclass
class ReachSuspensionResult:
    recorded: bool


@dataclass
class SendNotificationInput:
    key: str
    kind: str
    customer_id: str
    invoice_number: str | None = None
    payment_ref: str | None = None  # legacy "processor:payment_id" of earlier histories
    service_event_id: int | None = None
    at: datetime | None = None
    # The payment of a payment_received mail, as two fields: either may contain ":".
    processor: str | None = None
    payment_id: str | None = None


@dataclass
class SendNotificationResult:
    key: str
    status: str  # "sent" | "already_sent" | "failed" | "unknown"
    message_id: str | None = None
    error: str | None = None


@dataclass
class ExpireNotificationInput:
    """The retry window of a mail ended before the send activity could settle it."""

    key: str
    kind: str
    reason: str  # becomes last_error when the row has none


@dataclass
class ExpireNotificationResult:
    key: str
    status: str | None  # the row's status afterwards; None: the mail was never recorded


@dataclass
class ApplyServiceStateInput:
    customer_id: str
    state: str
    causes: list[str]
    event_id: int


@dataclass
class ApplyServiceStateResult:
    provisioned: bool
    detail: str


# --- RerunWorkflow ---------------------------------------------------------------------


@dataclass
class RerunInput:
    class_name: str | None = None
    customer_id: str | None = None
    dry_run: bool = False
    actor: Actor | None = None
    page_size: int = 100


@dataclass
class RerunProgress:
    scanned: int
    changed_customers: int
    done: bool
    results: list[ReevaluateResult] = field(default_factory=list)


@dataclass
class ListCustomersInput:
    class_name: str | None
    customer_id: str | None
    after: str | None
    limit: int


@dataclass
class ListCustomersResult:
    customer_ids: list[str]


@dataclass
class ReevaluateViaWorkflowInput:
    customer_id: str
    dry_run: bool
    actor: Actor | None

