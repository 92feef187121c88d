"""Issuing an invoice: validate at the edge, record it in one transaction, start its workflow.

The database row comes first (the source of truth); the workflow id is derived from
customer and invoice number, so issuing the same invoice again starts nothing new. If the
workflow could not be started, the same command again starts it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from temporalio.client import Client

from activities.metrics import WORKFLOW_START_FAILURES
from client.invoices import (
    InvoiceWorkflowNotStarted,
    class_policy,
    planned_steps,
    start_invoice_workflow,
)
from db import ledger
from db.customers import get_customer_with_class
from db.rows import AuditInfo, ClassRow, InvoiceRow
from domain.ids import invoice_workflow_id
from domain.money import currency, format_amount, parse_amount
from domain.schedule import overdue_instant, parse_due, parse_when, suspension_instant
from operations.context import Context
from operations.errors import Conflict, NotFound, OperationError
from operations.signals import notify_invoices


@dataclass(frozen=True)
class IssueRequest:
    customer_id: str
    number: str
    charges: str
    issued: str
    due: str


async def issue_invoice(ctx: Context, request: IssueRequest, audit: AuditInfo | None,
                        *, client: Client | None = None) -> dict[str, Any]:
    if not request.number.strip():
        raise OperationError("invoice number must not be empty")
    found = await get_customer_with_class(ctx.conn, request.customer_id)
    if found is None:
        raise NotFound(f"unknown customer {request.customer_id!r}")
    customer, klass = found
    new_charges = parse_amount(request.charges, currency(klass.currency))
    try:
        issued_at = parse_when(request.issued, klass.timezone, "issue time")
    except ValueError as err:
        raise OperationError(str(err)) from None
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
        WORKFLOW_START_FAILURES.inc()
        raise OperationError(
            f"invoice {invoice.number} is recorded, but Temporal is not reachable ({err}); "
            "run the same command again to start its workflow") from None
    try:
        started = await start_invoice_workflow(
            client, ctx.settings.task_queue, invoice, klass, result.service_state,
            planned_steps(invoice, klass),
        )
    except InvoiceWorkflowNotStarted as err:
        WORKFLOW_START_FAILURES.inc()
        raise OperationError(
            f"invoice {invoice.number} is recorded, but {err}; run the same command again "
            "to start it") from None
    if result.changes:
        # A back-dated invoice moves money between invoices: tell their workflows at once.
        await notify_invoices(ctx, client, klass, customer.id, result.changes,
                              result.service_state,
                              reason=f"back-dated invoice {invoice.number} issued")
    return invoice_document(invoice, klass, result.status, started)


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
