"""What crosses Temporal for collection: the invoice's workflow, the re-run, provisioning.

One dataclass in and one out for each call. Commands and outcomes of the ledger are the
domain's own types (domain/ledger), re-exported here under the same names, never copied.
Activity names are constants so workflows never import activity code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from domain.ledger.commands import ChargeLateFee as ChargeLateFee
from domain.ledger.commands import ReachSuspension as ReachSuspension
from domain.ledger.commands import ReevaluationOutcome as ReevaluationOutcome
from domain.ledger.commands import SuspensionReached as SuspensionReached
from domain.ledger.effects import InvoiceFacts as InvoiceFacts
from domain.ledger.payments import Actor as Actor

CHECK_INVOICE = "check_invoice"
REACH_SUSPENSION = "reach_suspension"
REQUEST_LATE_FEE = "request_late_fee"
REOPEN_INVOICE = "reopen_invoice"
START_INVOICE_WORKFLOW = "start_invoice_workflow"
APPLY_SERVICE_STATE = "apply_service_state"
LIST_CUSTOMERS = "list_customers_page"
REEVALUATE_VIA_WORKFLOW = "reevaluate_via_customer_workflow"


# --- InvoiceWorkflow -------------------------------------------------------------------


@dataclass
class PlannedStep:
    kind: str
    key: str
    at: datetime  # when the step happens (moved by working time, SPEC 2.10)
    # When working time moved it: its time by SPEC 2.5 alone, and why. Absent from inputs
    # recorded before working time existed, whose steps never moved.
    nominal_at: datetime | None = None
    why: str | None = None


@dataclass
class InvoiceWorkflowInput:
    # Histories recorded before also carry class_name, issued_at, overdue_at and
    # suspend_at, which nothing read; the JSON converter ignores the unknown keys.
    customer_id: str
    invoice_number: str
    currency: str
    steps: list[PlannedStep]
    facts: InvoiceFacts
    # The customer's service when the workflow starts: a terminated customer's new invoice
    # is billed (invoice_issued) but not dunned (SPEC 2.9); reactivation starts it again.
    # None in histories recorded before.
    service_state: str | None = None


@dataclass
class InvoiceWorkflowResult:
    number: str
    outcome: str  # "paid", or "terminated" (its customer was, SPEC 2.9)
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
    # The next step's time by SPEC 2.5 alone and why working time moved it (None: not moved).
    next_step_nominal_at: datetime | None = None
    next_step_why: str | None = None
    # Every step working time moved, with why: "due_reminder:3d" -> "...".
    moved: dict[str, str] = field(default_factory=dict)
    # The customer's hold in force and so why the next steps are held (SPEC 2.11).
    hold: str | None = None


@dataclass
class LateFeeRequested:
    """The customer's workflow was asked to charge the fee; its ledger decides and answers
    nobody (the invoice hears of the new remaining by the re-evaluation signal)."""

    requested: bool


@dataclass
class CheckInvoiceInput:
    customer_id: str
    invoice_number: str


@dataclass
class StartInvoiceWorkflowInput:
    """Start the workflow of a recorded invoice unless it runs (idempotent)."""

    customer_id: str
    invoice_number: str


@dataclass
class StartInvoiceWorkflowResult:
    workflow: str  # "started" | "already started"


@dataclass
class ReopenInvoiceInput:
    """Start an invoice's lifecycle again after a reversal opened the paid invoice."""

    customer_id: str
    invoice_number: str


@dataclass
class ReopenInvoiceResult:
    started: bool


# --- provisioning ----------------------------------------------------------------------


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
    results: list[ReevaluationOutcome] = field(default_factory=list)


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
