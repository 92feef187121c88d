"""Telling workflows about a ledger change made outside the customer's workflow.

Used when a back-dated invoice moves money between invoices at issue time: the invoices
whose facts changed hear of it, one that was paid (workflow ended) and is open again gets
its lifecycle back, and the customer's workflow re-decides the service state.
"""

from __future__ import annotations

from collections.abc import Iterable

from temporalio.client import Client
from temporalio.service import RPCError

from client.customers import wake_for_service_evaluation
from client.invoices import planned_steps, start_invoice_workflow, tell_invoice
from db.fold import InvoiceChange
from db.invoice_rows import get_invoice
from db.rows import ClassRow
from operations.context import Context
from workflows.payloads import EvaluateServiceSignal, InvoiceFacts, InvoiceReevaluatedSignal


async def notify_invoices(ctx: Context, client: Client, klass: ClassRow, customer_id: str,
                          changes: Iterable[InvoiceChange], service_state: str,
                          reason: str) -> None:
    for change in changes:
        facts = InvoiceFacts(number=change.number, remaining=change.remaining,
                             collection_status=change.collection_status,
                             payment_status=change.payment_status, paid=change.paid)
        try:
            await tell_invoice(client, customer_id, change.number,
                               InvoiceReevaluatedSignal(facts=facts, service_state=service_state))
        except RPCError:
            if change.paid:
                continue  # ended, and rightly so
            invoice = await get_invoice(ctx.conn, customer_id, change.number)
            if invoice is not None:
                await start_invoice_workflow(client, ctx.settings.task_queue, invoice, klass,
                                             service_state, planned_steps(invoice, klass),
                                             reopen=True)
    await wake_for_service_evaluation(client, ctx.settings.task_queue, customer_id,
                                      EvaluateServiceSignal(reason=reason))
