"""Everything that crosses Temporal: workflow, activity, signal, update and query payloads.

One dataclass in and one out for each call (``XxxInput``/``XxxResult``). Money is integer
minor units plus the currency code, or decimal strings at the edges; instants are aware
UTC datetimes. Activity names are constants so workflows never import activity code
(which pulls in the database driver and the mailer).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import quote

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
APPLY_SERVICE_STATE = "apply_service_state"
LIST_CUSTOMERS = "list_customers_page"
REEVALUATE_VIA_WORKFLOW = "reevaluate_via_customer_workflow"


def _part(value: str) -> str:
    # Percent-encode everything but plain characters, so ":" only ever separates parts:
    # customer "k" with invoice "x:1" and customer "k:x" with invoice "1" stay distinct.
    return quote(value, safe="-_.~")


def invoice_workflow_id(customer_id: str, number: str) -> str:
    return f"invoice:{_part(customer_id)}:{_part(number)}"


def customer_workflow_id(customer_id: str) -> str:
    return f"customer:{_part(customer_id)}"


def payment_update_id(processor: str, payment_id: str) -> str:
    return f"payment:{processor}:{payment_id}"


# --- facts about invoices --------------------------------------------------------------


@dataclass
class InvoiceFacts:
    """An invoice as the database sees it now (the source of truth)."""

    number: str
    remaining: int
    collection_status: str
    payment_status: str
    paid: bool
    cancelled: bool = False


@dataclass
class PlannedStep:
    kind: str
    key: str
    at: datetime


@dataclass
class Actor:
    """Who asked for a change (audit trail, SPEC 2.7)."""

    name: str
    realm: str = "admin"
    reason: str | None = None
    request_id: str | None = None
    on_behalf_of: str | None = None


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
    outcome: str  # "paid" | "cancelled"
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
class CustomerWorkflowInput:
    customer_id: str
    # Work accepted by an earlier run but not finished when it continued as new.
    pending: list[CustomerOperation] = field(default_factory=list)
    followups: list[Followup] = field(default_factory=list)
    # Tests force a small value to exercise continue-as-new.
    max_history_events: int = 5_000
    mails: list[SendNotificationInput] = field(default_factory=list)


@dataclass
class PostPaymentInput:
    processor: str
    payment_id: str
    amount: str  # decimal string in the class currency, validated again in the activity
    currency: str
    received_at: datetime | None = None  # None: when the customer workflow applies it
    body_hash: str = ""  # ignored: the activity computes the canonical fingerprint
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
    payment: PostPaymentInput | None = None
    evaluate: EvaluateServiceSignal | None = None


@dataclass
class ServiceTransition:
    state: str
    causes: list[str]
    event_id: int


@dataclass
class Followup:
    """Effects of a committed ledger change, carried out after the caller got its answer."""

    changed: list[InvoiceFacts] = field(default_factory=list)
    transition: ServiceTransition | None = None
    receipt_key: str | None = None
    payment_ref: str | None = None  # "processor:payment_id" for payment_received
    service_state: str | None = None


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
    payment: PostPaymentInput | None = None
    reversal: ReversePaymentInput | None = None
    assignment: AssignPaymentInput | None = None
    dry_run: bool = False
    reason: str = ""
    actor: Actor | None = None


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
    payment_ref: str | None = None
    service_event_id: int | None = None
    at: datetime | None = None


@dataclass
class SendNotificationResult:
    key: str
    status: str  # "sent" | "already_sent" | "failed"
    message_id: str | None = None
    error: str | None = None


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

