"""Starting an invoice's workflow: its id, its planned steps, its search attributes.

Used by the customer's workflow (through its ledger activities) when an invoice is issued
and when a reversal or a back-dated invoice opens a paid one again, so both start it the
same way.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    Client,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
)
from temporalio.common import (
    QueryRejectCondition,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from client.connect import registering
from db.classes import policy_of
from db.rows import ClassRow, InvoiceRow
from domain.collection.timeline import working_steps
from domain.hold import Hold
from domain.ids import invoice_workflow_id
from domain.money import currency, format_amount
from workflows import search_attributes as sa
from workflows.collection.invoice import InvoiceWorkflow
from workflows.collection.payloads import (
    InvoiceFacts,
    InvoiceStatusQueryResult,
    InvoiceWorkflowInput,
    PlannedStep,
)


class InvoiceWorkflowNotStarted(Exception):
    """The server refused the start (not "already started"): the invoice has no workflow."""

    def __init__(self, number: str, cause: RPCError) -> None:
        super().__init__(f"the workflow of invoice {number} could not be started "
                         f"({cause.message or cause})")
        self.number = number


def planned_steps(invoice: InvoiceRow, klass: ClassRow) -> list[PlannedStep]:
    """The steps the invoice's workflow waits for: at their times moved by working time
    (SPEC 2.10), each with its nominal time and why when it moved. Computed here, outside
    the workflow, because the tz database cannot be read inside it; the workflow gets the
    instants as data, so a running workflow keeps the times it started with."""
    return [PlannedStep(kind=s.kind, key=s.key, at=s.at,
                        nominal_at=s.nominal if s.moved else None, why=s.why)
            for s in working_steps(policy_of(klass), invoice.overdue_at)]


async def start_invoice_workflow(client: Client, task_queue: str, invoice: InvoiceRow,
                                 klass: ClassRow, service_state: str,
                                 steps: list[PlannedStep], *, reopen: bool = False,
                                 eager: bool = False, hold: Hold | None = None) -> str:
    """Start the invoice's workflow unless it exists; returns "started" or "already started".

    ``reopen``: the invoice's workflow ended (paid) and a reversal opened the invoice again;
    a new run of the same id takes over (mails already sent are not sent again: outbox).
    ``eager``: the caller runs in a worker of ``task_queue`` with this very client (an
    activity), so the server may hand the first workflow task back in the start's answer
    instead of through the task queue.
    """
    workflow_id = invoice_workflow_id(invoice.customer_id, invoice.number)
    facts = InvoiceFacts(number=invoice.number, remaining=invoice.remaining,
                         collection_status=invoice.collection_status,
                         payment_status=invoice.payment_status,
                         paid=invoice.payment_status == "paid", hold=hold)
    cur = currency(klass.currency)
    try:
        await registering(client, lambda: client.start_workflow(
            InvoiceWorkflow.run,
            InvoiceWorkflowInput(
                customer_id=invoice.customer_id, invoice_number=invoice.number,
                currency=klass.currency, steps=steps, facts=facts,
                service_state=service_state,
            ),
            id=workflow_id,
            task_queue=task_queue,
            request_eager_start=eager,
            id_reuse_policy=(WorkflowIDReusePolicy.ALLOW_DUPLICATE if reopen
                             else WorkflowIDReusePolicy.REJECT_DUPLICATE),
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            search_attributes=sa.typed((sa.CUSTOMER_ID, invoice.customer_id),
                (sa.CUSTOMER_CLASS, klass.name),
                (sa.INVOICE_NUMBER, invoice.number),
                (sa.COLLECTION_STATUS, invoice.collection_status),
                (sa.SERVICE_STATE, service_state),
                (sa.DUE_DATE, invoice.overdue_at),
                *(((sa.ON_HOLD, True),) if hold is not None else ()),
            ),
            static_summary=(f"Invoice {invoice.number} · {invoice.customer_id} · "
                            f"{format_amount(invoice.amount_due, cur)} {klass.currency}"),
            static_details=(
                f"Collection of invoice **{invoice.number}** of customer "
                f"**{invoice.customer_id}** (class {klass.name}).\n"
                f"Amount due {format_amount(invoice.amount_due, cur)} {klass.currency}; "
                f"overdue from {invoice.overdue_at.isoformat()}; "
                f"suspension at {invoice.suspend_at.isoformat()}."
            ),
        ))
    except WorkflowAlreadyStartedError:
        return "already started"
    except RPCError as err:
        raise InvoiceWorkflowNotStarted(invoice.number, err) from err
    return "started"


async def invoice_status(client: Client, customer_id: str, number: str, *,
                         rpc_seconds: float = 3.0) -> InvoiceStatusQueryResult | None:
    """What the invoice's running workflow says of itself (its ``status`` query: next step,
    its time and why); None when it has no running workflow or does not answer within
    ``rpc_seconds`` (a page must not hang on a busy worker)."""
    handle = client.get_workflow_handle_for(InvoiceWorkflow.run,
                                            invoice_workflow_id(customer_id, number))
    try:
        return await handle.query(InvoiceWorkflow.status,
                                  rpc_timeout=timedelta(seconds=rpc_seconds),
                                  reject_condition=QueryRejectCondition.NOT_OPEN)
    except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError):
        return None
