"""Activities of an invoice's lifecycle: read its facts, start (or restart) its workflow,
record that it reached its suspension time.

None of them changes money: the ledger's activities do (activities/ledger). Starting a
workflow is idempotent by its id; recording the suspension time is idempotent by value.
"""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities import metrics
from client.customers import request_late_fee, wake_for_service_evaluation
from client.invoices import InvoiceWorkflowNotStarted, planned_steps, start_invoice_workflow
from db.collection.invoice_rows import facts_of, get_invoice
from db.collection.invoices import mark_suspension_reached
from db.customers import get_customer, get_customer_with_class
from db.rows import ClassRow, CustomerRow, InvoiceRow
from domain.ledger.commands import (
    ChargeLateFee,
    EvaluateService,
    ReachSuspension,
    SuspensionReached,
)
from workflows import policies
from workflows.collection.payloads import (
    CHECK_INVOICE,
    REACH_SUSPENSION,
    REOPEN_INVOICE,
    REQUEST_LATE_FEE,
    START_INVOICE_WORKFLOW,
    CheckInvoiceInput,
    InvoiceFacts,
    LateFeeRequested,
    ReopenInvoiceInput,
    ReopenInvoiceResult,
    StartInvoiceWorkflowInput,
    StartInvoiceWorkflowResult,
)


def _not_found(customer_id: str, number: str) -> ApplicationError:
    return ApplicationError(f"invoice {number} of {customer_id} not found",
                            type=policies.NOT_FOUND, non_retryable=True)


class InvoiceActivities:
    """Holds the pool (reads, the suspension mark) and the client (workflow starts)."""

    def __init__(self, pool: AsyncConnectionPool, client: Client, task_queue: str) -> None:
        self.pool = pool
        self.client = client
        self.task_queue = task_queue

    @activity.defn(name=CHECK_INVOICE)
    async def check_invoice(self, input: CheckInvoiceInput) -> InvoiceFacts:
        async with self.pool.connection() as conn:
            invoice = await get_invoice(conn, input.customer_id, input.invoice_number)
            customer = await get_customer(conn, input.customer_id)
        if invoice is None or customer is None:
            raise _not_found(input.customer_id, input.invoice_number)
        return facts_of(invoice, customer.hold)  # with the hold in force (SPEC 2.11)

    @activity.defn(name=START_INVOICE_WORKFLOW)
    async def start_invoice(self, input: StartInvoiceWorkflowInput
                            ) -> StartInvoiceWorkflowResult:
        """Start the workflow of a recorded invoice unless it exists (idempotent); retried
        by the caller's policy until it succeeds, so no invoice stays without one."""
        invoice, klass, customer = await self._invoice(input.customer_id,
                                                       input.invoice_number)
        if invoice is None:
            raise _not_found(input.customer_id, input.invoice_number)
        started = await self._start(invoice, klass, customer, reopen=False)
        return StartInvoiceWorkflowResult(workflow=started)

    @activity.defn(name=REOPEN_INVOICE)
    async def reopen_invoice(self, input: ReopenInvoiceInput) -> ReopenInvoiceResult:
        """Start the lifecycle of an invoice again after a reversal opened it (idempotent)."""
        invoice, klass, customer = await self._invoice(input.customer_id,
                                                       input.invoice_number)
        if invoice is None or invoice.payment_status == "paid" or (
                customer.service_state == "terminated"):  # SPEC 2.9: final for dunning
            return ReopenInvoiceResult(started=False)
        started = await self._start(invoice, klass, customer, reopen=True)
        return ReopenInvoiceResult(started=started == "started")

    @activity.defn(name=REACH_SUSPENSION)
    async def reach_suspension(self, command: ReachSuspension) -> SuspensionReached:
        """Record that the invoice is past its suspension time, then wake the customer.

        The customer's workflow makes the decision (it is the single writer); waking it
        with signal-with-start works whether or not it is running yet.
        """
        async with self.pool.connection() as conn:
            recorded = await mark_suspension_reached(conn, command.customer_id,
                                                     command.invoice_number, command.at)
        await wake_for_service_evaluation(
            self.client, self.task_queue, EvaluateService(
                customer_id=command.customer_id,
                reason=f"invoice {command.invoice_number} reached its suspension time",
                invoice_number=command.invoice_number))
        return SuspensionReached(recorded=recorded)

    @activity.defn(name=REQUEST_LATE_FEE)
    async def request_late_fee(self, command: ChargeLateFee) -> LateFeeRequested:
        """Ask the customer's workflow, the single writer of the ledger, to charge the
        invoice's late fee if it is due (SPEC 2.9); signal-with-start, so idempotent enough:
        a repeated request is answered ``already_charged`` by the ledger."""
        await request_late_fee(self.client, self.task_queue, command)
        return LateFeeRequested(requested=True)

    async def _invoice(self, customer_id: str, number: str
                       ) -> tuple[InvoiceRow | None, ClassRow, CustomerRow]:
        """The invoice, its class and the customer (service state, hold), for its workflow."""
        async with self.pool.connection() as conn:
            found = await get_customer_with_class(conn, customer_id)
            if found is None:
                raise _not_found(customer_id, number)
            invoice = await get_invoice(conn, customer_id, number)
        customer, klass = found
        return invoice, klass, customer

    async def _start(self, invoice: InvoiceRow, klass: ClassRow, customer: CustomerRow, *,
                     reopen: bool) -> str:
        """Start the invoice's workflow; a refusal (or no server) is counted and raised, so
        the caller's retry policy keeps trying until the invoice has its workflow."""
        try:
            return await start_invoice_workflow(
                self.client, self.task_queue, invoice, klass, customer.service_state,
                planned_steps(invoice, klass), reopen=reopen, eager=True,
                hold=customer.hold)
        except (InvoiceWorkflowNotStarted, RuntimeError):
            metrics.WORKFLOW_START_FAILURES.inc()
            raise
