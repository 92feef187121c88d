"""Telling invoice workflows that their invoice was re-evaluated, from outside a workflow."""

from __future__ import annotations

from collections.abc import Iterable

from temporalio.client import Client
from temporalio.service import RPCError

from db.fold import InvoiceChange
from workflows.invoice import InvoiceWorkflow
from workflows.payloads import InvoiceFacts, InvoiceReevaluatedSignal, invoice_workflow_id


async def notify_invoices(client: Client, customer_id: str, changes: Iterable[InvoiceChange],
                          service_state: str | None) -> None:
    for change in changes:
        handle = client.get_workflow_handle(invoice_workflow_id(customer_id, change.number))
        facts = InvoiceFacts(number=change.number, remaining=change.remaining,
                             collection_status=change.collection_status,
                             payment_status=change.payment_status, paid=change.paid)
        try:
            await handle.signal(InvoiceWorkflow.reevaluated,
                                InvoiceReevaluatedSignal(facts=facts, service_state=service_state))
        except RPCError:
            # Ended already (paid) or never started: nothing to tell.
            continue
