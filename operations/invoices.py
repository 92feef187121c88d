"""Issuing an invoice: validate at the edge, record it in one transaction, start its workflow.

The database row comes first (the source of truth); the workflow id is derived from
customer and invoice number, so issuing the same invoice again starts nothing new. If the
workflow could not be started, the same command again starts it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from db import ledger
from db.customers import get_customer_with_class
from db.rows import AuditInfo, ClassRow, InvoiceRow
from domain.money import currency, format_amount, parse_amount
from domain.schedule import Policy, overdue_instant, parse_due, plan_steps, suspension_instant
from operations.context import Context
from operations.errors import Conflict, NotFound, OperationError
from operations.signals import notify_invoices
from workflows import search_attributes as sa
from workflows.invoice import InvoiceWorkflow
from workflows.payloads import InvoiceFacts, InvoiceWorkflowInput, PlannedStep, invoice_workflow_id


@dataclass(frozen=True)
class IssueRequest:
    customer_id: str
    number: str
    charges: str
    issued: str
    due: str


def parse_instant(text: str, what: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise OperationError(f"{what} {text!r} is not an ISO 8601 date-time") from None
    if value.tzinfo is None:
        raise OperationError(f"{what} {text!r} needs a UTC offset, e.g. {text}+00:00")
    return value.astimezone(UTC)


def class_policy(klass: ClassRow) -> Policy:
    return Policy(
        reminders=tuple(timedelta(seconds=s) for s in klass.reminders_seconds),
        grace=timedelta(seconds=klass.grace_seconds),
        warning=timedelta(seconds=klass.warning_seconds),
    )


async def issue_invoice(ctx: Context, request: IssueRequest, audit: AuditInfo | None,
                        *, client: Client | None = None) -> dict[str, Any]:
    if not request.number.strip():
        raise OperationError("invoice number must not be empty")
    found = await get_customer_with_class(ctx.conn, request.customer_id)
    if found is None:
        raise NotFound(f"unknown customer {request.customer_id!r}")
    customer, klass = found
    new_charges = parse_amount(request.charges, currency(klass.currency))
    issued_at = parse_instant(request.issued, "issue time")
    try:
        due = parse_due(request.due)
        overdue_at = overdue_instant(due, klass.timezone)
    except ValueError as err:
        raise OperationError(f"due {request.due!r}: {err}") from None
    policy = class_policy(klass)
    suspend_at = suspension_instant(overdue_at, policy)

    result = await ledger.issue_invoice(ctx.conn, ledger.IssueInvoice(
        customer_id=customer.id, number=request.number, new_charges=new_charges,
        issued_at=issued_at, due_text=request.due.strip(), overdue_at=overdue_at,
        suspend_at=suspend_at, audit=audit,
    ))
    if result.status == "conflict":
        raise Conflict(f"invoice {request.number} of {customer.id} already exists with other "
                       f"{', '.join(result.conflict_fields)}; nothing changed")
    invoice = result.invoice
    try:
        client = client or await ctx.client()
    except RuntimeError as err:
        raise OperationError(
            f"invoice {invoice.number} is recorded, but Temporal is not reachable ({err}); "
            "run the same command again to start its workflow") from None
    started = await start_invoice_workflow(
        client, ctx.settings.task_queue, invoice, klass, result.service_state,
        planned_steps(invoice, klass),
    )
    if result.changes:
        # A back-dated invoice moves money between invoices: tell their workflows at once.
        await notify_invoices(ctx, client, klass, customer.id, result.changes,
                              result.service_state,
                              reason=f"back-dated invoice {invoice.number} issued")
    return invoice_document(invoice, klass, result.status, started)


def planned_steps(invoice: InvoiceRow, klass: ClassRow) -> list[PlannedStep]:
    return [PlannedStep(kind=str(s.kind), key=s.key, at=s.at)
            for s in plan_steps(invoice.overdue_at, class_policy(klass))]


async def start_invoice_workflow(client: Client, task_queue: str, invoice: InvoiceRow,
                                 klass: ClassRow, service_state: str,
                                 steps: list[PlannedStep], *, reopen: bool = False) -> str:
    """Start the invoice's workflow unless it exists; returns "started" or "already started".

    ``reopen``: the invoice's workflow ended (paid) and a reversal opened the invoice again;
    a new run of the same id takes over (mails already sent are not sent again: outbox).
    """
    workflow_id = invoice_workflow_id(invoice.customer_id, invoice.number)
    facts = InvoiceFacts(number=invoice.number, remaining=invoice.remaining,
                         collection_status=invoice.collection_status,
                         payment_status=invoice.payment_status,
                         paid=invoice.payment_status == "paid")
    cur = currency(klass.currency)
    try:
        await client.start_workflow(
            InvoiceWorkflow.run,
            InvoiceWorkflowInput(
                customer_id=invoice.customer_id, invoice_number=invoice.number,
                class_name=klass.name, currency=klass.currency, issued_at=invoice.issued_at,
                overdue_at=invoice.overdue_at, suspend_at=invoice.suspend_at, steps=steps,
                facts=facts,
            ),
            id=workflow_id,
            task_queue=task_queue,
            id_reuse_policy=(WorkflowIDReusePolicy.ALLOW_DUPLICATE if reopen
                             else WorkflowIDReusePolicy.REJECT_DUPLICATE),
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            search_attributes=sa.typed((sa.CUSTOMER_ID, invoice.customer_id),
                (sa.CUSTOMER_CLASS, klass.name),
                (sa.INVOICE_NUMBER, invoice.number),
                (sa.COLLECTION_STATUS, invoice.collection_status),
                (sa.SERVICE_STATE, service_state),
                (sa.DUE_DATE, invoice.overdue_at),
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
        )
    except WorkflowAlreadyStartedError:
        return "already started"
    except RPCError as err:
        raise OperationError(
            f"invoice {invoice.number} is recorded, but its workflow could not be started "
            f"({err}); run the same command again to start it") from None
    return "started"


def invoice_document(invoice: InvoiceRow, klass: ClassRow, status: str,
                     workflow: str) -> dict[str, Any]:
    cur = currency(klass.currency)
    return {
        "status": status,
        "customer_id": invoice.customer_id,
        "number": invoice.number,
        "currency": klass.currency,
        "new_charges": format_amount(invoice.new_charges, cur),
        "previous_balance": format_amount(invoice.previous_balance, cur),
        "amount_due": format_amount(invoice.amount_due, cur),
        "remaining": format_amount(invoice.remaining, cur),
        "collection_status": invoice.collection_status,
        "payment_status": invoice.payment_status,
        "overdue_at": invoice.overdue_at.isoformat(),
        "suspend_at": invoice.suspend_at.isoformat(),
        "workflow_id": invoice_workflow_id(invoice.customer_id, invoice.number),
        "workflow": workflow,
    }
