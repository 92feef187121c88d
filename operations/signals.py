"""Telling workflows about a ledger change made outside the customer's workflow.

Used when a back-dated invoice moves money between invoices at issue time: the invoices
whose facts changed hear of it, one that was paid (workflow ended) and is open again gets
its lifecycle back, and the customer's workflow re-decides the service state.
"""

from __future__ import annotations

from collections.abc import Iterable

from temporalio.client import Client
from temporalio.service import RPCError

from db.fold import InvoiceChange
from db.invoice_rows import get_invoice
from db.rows import ClassRow
from operations.context import Context
from workflows.customer import CustomerWorkflow
from workflows.invoice import InvoiceWorkflow
from workflows.payloads import (
    CustomerWorkflowInput,
    EvaluateServiceSignal,
    InvoiceFacts,
    InvoiceReevaluatedSignal,
    customer_workflow_id,
    invoice_workflow_id,
)
from workflows.search_attributes import CUSTOMER_ID, typed


async def notify_invoices(ctx: Context, client: Client, klass: ClassRow, customer_id: str,
                          changes: Iterable[InvoiceChange], service_state: str,
                          reason: str) -> None:
    from operations.invoices import planned_steps, start_invoice_workflow

    for change in changes:
        handle = client.get_workflow_handle(invoice_workflow_id(customer_id, change.number))
        facts = InvoiceFacts(number=change.number, remaining=change.remaining,
                             collection_status=change.collection_status,
                             payment_status=change.payment_status, paid=change.paid)
        try:
            await handle.signal(InvoiceWorkflow.reevaluated,
                                InvoiceReevaluatedSignal(facts=facts, service_state=service_state))
        except RPCError:
            if change.paid:
                continue  # ended, and rightly so
            invoice = await get_invoice(ctx.conn, customer_id, change.number)
            if invoice is not None:
                await start_invoice_workflow(client, ctx.settings.task_queue, invoice, klass,
                                             service_state, planned_steps(invoice, klass),
                                             reopen=True)
    await client.start_workflow(
        CustomerWorkflow.run, CustomerWorkflowInput(customer_id=customer_id),
        id=customer_workflow_id(customer_id), task_queue=ctx.settings.task_queue,
        start_signal="evaluate_service",
        start_signal_args=[EvaluateServiceSignal(reason=reason)],
        search_attributes=typed((CUSTOMER_ID, customer_id)),
    )
