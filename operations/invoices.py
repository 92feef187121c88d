"""Issuing an invoice: validate at the edge, then the customer's workflow records it.

The CustomerWorkflow is the only writer of the customer's ledger (SPEC 3): an update-with-
start asks it to record the invoice and start the invoice's workflow, and answers once
both are done. If Temporal cannot be reached, the command fails and nothing is recorded;
the same command again issues it (an invoice already recorded is answered ``exists``, and
its workflow is started if it has none).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import uuid4

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.metrics import WORKFLOW_START_FAILURES
from client import customers
from client.customers import UpdateRefused
from db.classes import policy_of
from db.customers import get_customer_with_class
from db.rows import AuditInfo
from domain.collection.invoicing import issue_command
from domain.ids import invoice_workflow_id
from domain.ledger.commands import InvalidCommand
from domain.money import currency, format_amount
from operations.context import Context, actor_of
from operations.errors import Conflict, NotFound, OperationError, Unavailable
from workflows.ledger.payloads import IssuedInvoice


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
        raise OperationError("invoice number must not be empty", "number")
    found = await get_customer_with_class(ctx.conn, request.customer_id)
    if found is None:
        raise NotFound(f"unknown customer {request.customer_id!r}")
    customer, klass = found
    try:
        command = issue_command(
            customer_id=customer.id, number=request.number, charges=request.charges,
            currency_code=klass.currency, issued=request.issued, due=request.due,
            policy=policy_of(klass), actor=actor_of(audit, customer.id))
    except InvalidCommand as err:
        raise OperationError(str(err), err.field) from None
    try:
        client = client or await ctx.client()
        result = await customers.issue_invoice(client, ctx.settings.task_queue, command,
                                               delivery=uuid4().hex)
    except UpdateRefused as err:
        raise OperationError(str(err)) from None
    except RPCError as err:
        WORKFLOW_START_FAILURES.inc()
        what = ("Temporal is not reachable" if err.status == RPCStatusCode.UNAVAILABLE
                else f"the workflow of customer {customer.id} could not be started")
        raise Unavailable(f"invoice {request.number} is not recorded: {what} "
                          f"({err.message or err}); run the same command again") from None
    except RuntimeError as err:  # no connection (the context's client, or a lazy one)
        WORKFLOW_START_FAILURES.inc()
        raise Unavailable(f"invoice {request.number} is not recorded: Temporal is not "
                          f"reachable ({err}); run the same command again") from None
    if result.status == "conflict":
        raise Conflict(f"invoice {request.number} of {customer.id} already exists with other "
                       f"{', '.join(result.conflict_fields)}; nothing changed")
    return invoice_document(result.invoice, klass.currency, result.status,
                            result.workflow or "")


def invoice_document(invoice: IssuedInvoice, currency_code: str, status: str,
                     workflow: str) -> dict[str, Any]:
    cur = currency(currency_code)
    return {
        "status": status,
        "customer_id": invoice.customer_id,
        "number": invoice.number,
        "currency": currency_code,
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
