"""Ledger activities: each one transaction of db/ledger/transactions.py, idempotent on retry.

The token of every transaction is the activity's identity within its workflow run, so a
retry after a committed first attempt returns the first attempt's result (db/ledger/tokens.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities import metrics
from client.customers import wake_for_service_evaluation
from client.invoices import (
    InvoiceWorkflowNotStarted,
    planned_steps,
    start_invoice_workflow,
)
from db.collection.invoice_rows import get_invoice, list_invoices
from db.collection.invoices import mark_suspension_reached
from db.customers import get_customer_with_class
from db.errors import CurrencyMismatch, InvalidValue, UnknownCustomer, UnknownPayment
from db.ledger import transactions as ledger
from db.ledger.fold import InvoiceChange as DbInvoiceChange
from db.ledger.fold import ServiceTransition as DbTransition
from db.ledger.payments import get_payment
from db.ledger.unmatched import AssignUnmatched
from db.ledger.unmatched import assign_unmatched as assign
from db.rows import AuditInfo, ClassRow, CustomerRow, InvoiceRow
from domain.ledger.payments import ApplyPayment, PaymentOutcome
from domain.money import MoneyError
from workflows import policies
from workflows.payloads import (
    APPLY_PAYMENT,
    ASSIGN_UNMATCHED,
    CHECK_INVOICE,
    EVALUATE_SERVICE,
    ISSUE_INVOICE,
    REACH_SUSPENSION,
    REEVALUATE_CUSTOMER,
    REOPEN_INVOICE,
    REVERSE_PAYMENT,
    START_INVOICE_WORKFLOW,
    CheckInvoiceInput,
    EvaluateServiceSignal,
    InvoiceChange,
    InvoiceFacts,
    IssuedInvoice,
    LedgerActivityInput,
    LedgerActivityResult,
    ReachSuspensionInput,
    ReachSuspensionResult,
    ReopenInvoiceInput,
    ReopenInvoiceResult,
    ServiceTransition,
    StartInvoiceWorkflowInput,
    StartInvoiceWorkflowResult,
)


@contextmanager
def _refused_by_database() -> Iterator[None]:
    """A constraint the data violates will not pass on a retry: fail for good, clearly."""
    try:
        yield
    except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as err:
        raise _invalid(f"refused by the database: {str(err).splitlines()[0]}") from None


def _token() -> str:
    info = activity.info()
    return f"{info.workflow_run_id}:{info.activity_id}"


def _invalid(message: str) -> ApplicationError:
    return ApplicationError(message, type=policies.INVALID_INPUT, non_retryable=True)


_audit = ledger.audit_of


def _facts(change: DbInvoiceChange) -> InvoiceFacts:
    return InvoiceFacts(number=change.number, remaining=change.remaining,
                        collection_status=change.collection_status,
                        payment_status=change.payment_status, paid=change.paid)


def _issued(invoice: InvoiceRow) -> IssuedInvoice:
    return IssuedInvoice(
        customer_id=invoice.customer_id, number=invoice.number,
        new_charges=invoice.new_charges, previous_balance=invoice.previous_balance,
        amount_due=invoice.amount_due, remaining=invoice.remaining,
        collection_status=invoice.collection_status, payment_status=invoice.payment_status,
        issued_at=invoice.issued_at, overdue_at=invoice.overdue_at,
        suspend_at=invoice.suspend_at)


def _transition(service: DbTransition | None) -> ServiceTransition | None:
    if service is None or service.event_id is None:
        return None
    return ServiceTransition(state=service.state, causes=list(service.causes),
                             event_id=service.event_id)


class LedgerActivities:
    """Holds the connection pool (and the client, to wake a customer's workflow)."""

    def __init__(self, pool: AsyncConnectionPool, client: Client, task_queue: str) -> None:
        self.pool = pool
        self.client = client
        self.task_queue = task_queue

    @activity.defn(name=ISSUE_INVOICE)
    async def issue_invoice(self, input: LedgerActivityInput) -> LedgerActivityResult:
        """Record the invoice (``created``, ``exists`` or ``conflict``, each an answer);
        ``changed``: the other invoices a back-dated one re-evaluated. No service decision
        (the workflow runs evaluate_service after it when invoices changed)."""
        issue = input.issue
        if issue is None:
            raise _invalid("issue_invoice needs an invoice")
        async with self.pool.connection() as conn:
            _, klass = await self._customer(conn, input.customer_id)
            try:
                with _refused_by_database():
                    result = await ledger.issue_invoice(conn, ledger.IssueInvoice(
                        customer_id=input.customer_id, number=issue.number,
                        new_charges=issue.new_charges, issued_at=issue.issued_at,
                        due_text=issue.due_text, overdue_at=issue.overdue_at,
                        suspend_at=issue.suspend_at, token=_token(),
                        audit=_audit(issue.actor or input.actor),
                    ))
            except InvalidValue as err:
                raise _invalid(str(err)) from None
        return LedgerActivityResult(
            status=result.status, changed=[_facts(c) for c in result.changes],
            transition=None, service_state=result.service_state,
            service_before=result.service_state, balance=result.balance,
            class_name=klass.name, invoice=_issued(result.invoice),
            conflict_fields=list(result.conflict_fields),
        )

    @activity.defn(name=START_INVOICE_WORKFLOW)
    async def start_invoice(self, input: StartInvoiceWorkflowInput
                            ) -> StartInvoiceWorkflowResult:
        """Start the workflow of a recorded invoice unless it exists (idempotent); retried
        by the caller's policy until it succeeds, so no invoice stays without one."""
        invoice, klass, state = await self._invoice(input.customer_id, input.invoice_number)
        if invoice is None:
            raise ApplicationError(
                f"invoice {input.invoice_number} of {input.customer_id} not found",
                type=policies.NOT_FOUND, non_retryable=True)
        started = await self._start(invoice, klass, state, reopen=False)
        return StartInvoiceWorkflowResult(workflow=started)

    @activity.defn(name=APPLY_PAYMENT)
    async def apply_payment(self, payment: ApplyPayment) -> PaymentOutcome:
        """``payment``: the command as built at the edge, validated there, stamped with the
        workflow's instant. Its outcome is built here, once, from the transaction's."""
        if payment.applied_at is None or payment.received_at is None:
            raise _invalid("apply_payment needs a payment stamped by the customer's workflow")
        now = payment.applied_at
        async with self.pool.connection() as conn:
            _, klass = await self._customer(conn, payment.customer_id)
            try:
                with _refused_by_database():  # e.g. another currency than the class's
                    result = await ledger.apply_payment(conn, payment, now=now, token=_token())
            except InvalidValue as err:
                raise _invalid(str(err)) from None
        return PaymentOutcome(
            status=result.status, service_state=result.service_state, balance=result.balance,
            changed=[_facts(c) for c in result.changes],
            transition=_transition(result.service),
            payment_receipts=klass.payment_receipts, class_name=klass.name)

    @activity.defn(name=REVERSE_PAYMENT)
    async def reverse_payment(self, input: LedgerActivityInput) -> LedgerActivityResult:
        reversal = input.reversal
        if reversal is None:
            raise _invalid("reverse_payment needs a reversal")
        async with self.pool.connection() as conn:
            _, klass = await self._customer(conn, input.customer_id)
            payment = await get_payment(conn, reversal.processor, reversal.payment_id)
            if payment is not None and payment.customer_id != input.customer_id:
                # Checked before anything is written: only the owner's workflow reverses.
                raise _invalid(f"payment {reversal.processor}:{reversal.payment_id} belongs "
                               "to another customer")
            try:
                result = await ledger.reverse_payment(conn, ledger.ReversePayment(
                    processor=reversal.processor, payment_id=reversal.payment_id,
                    now=input.now, reason=input.reason, token=_token(),
                    audit=_audit(input.actor),
                ))
            except UnknownPayment as err:
                raise ApplicationError(str(err), type=policies.NOT_FOUND,
                                       non_retryable=True) from None
        service_before = result.service.previous_state if result.service else result.service_state
        return LedgerActivityResult(
            status=result.status, changed=[_facts(c) for c in result.changes],
            transition=_transition(result.service), service_state=result.service_state,
            service_before=service_before, balance=result.balance, class_name=klass.name,
        )

    @activity.defn(name=ASSIGN_UNMATCHED)
    async def assign_unmatched(self, input: LedgerActivityInput) -> LedgerActivityResult:
        assignment = input.assignment
        if assignment is None:
            raise _invalid("assign_unmatched needs an assignment")
        audit = _audit(input.actor) or AuditInfo(actor="dunning", realm="system")
        async with self.pool.connection() as conn:
            customer, klass = await self._customer(conn, input.customer_id)
            try:
                result = await assign(conn, AssignUnmatched(
                    processor=assignment.processor, payment_id=assignment.payment_id,
                    customer_id=input.customer_id, now=input.now, audit=audit,
                    token=_token(),
                ))
            except UnknownPayment as err:
                raise ApplicationError(str(err), type=policies.NOT_FOUND,
                                       non_retryable=True) from None
            except (CurrencyMismatch, InvalidValue, MoneyError) as err:
                raise _invalid(str(err)) from None
        applied = result.applied
        service = applied.service if applied else None
        state = applied.service_state if applied else customer.service_state
        return LedgerActivityResult(
            status=result.status,
            changed=[_facts(c) for c in applied.changes] if applied else [],
            transition=_transition(service), service_state=state,
            service_before=service.previous_state if service else state,
            balance=applied.balance if applied else customer.balance,
            payment_receipts=klass.payment_receipts, class_name=klass.name,
        )

    @activity.defn(name=REEVALUATE_CUSTOMER)
    async def reevaluate_customer(self, input: LedgerActivityInput) -> LedgerActivityResult:
        async with self.pool.connection() as conn:
            _, klass = await self._customer(conn, input.customer_id)
            before = {i.number: i.collection_status
                      for i in await list_invoices(conn, input.customer_id)}
            result = await ledger.reevaluate(conn, ledger.Reevaluate(
                customer_id=input.customer_id, now=input.now, dry_run=input.dry_run,
                reason=input.reason or "re-run", token=_token(), audit=_audit(input.actor),
            ))
        service_before = result.service.previous_state if result.service else result.service_state
        return LedgerActivityResult(
            status="dry_run" if input.dry_run else "reevaluated",
            changed=[_facts(c) for c in result.changes],
            transition=_transition(result.service), service_state=result.service_state,
            service_before=service_before, balance=result.balance, class_name=klass.name,
            changes=[InvoiceChange(number=c.number, before_status=before.get(c.number),
                                   after_status=c.collection_status, remaining=c.remaining)
                     for c in result.changes],
        )

    @activity.defn(name=EVALUATE_SERVICE)
    async def evaluate_service(self, input: LedgerActivityInput) -> LedgerActivityResult:
        async with self.pool.connection() as conn:
            customer, klass = await self._customer(conn, input.customer_id)
            result = await ledger.evaluate_service(conn, ledger.EvaluateService(
                customer_id=input.customer_id, now=input.now, reason=input.reason,
                token=_token(),
            ))
        service_before = result.service.previous_state if result.service else result.service_state
        return LedgerActivityResult(
            status="evaluated", changed=[], transition=_transition(result.service),
            service_state=result.service_state, service_before=service_before,
            balance=customer.balance, class_name=klass.name,
        )

    @activity.defn(name=CHECK_INVOICE)
    async def check_invoice(self, input: CheckInvoiceInput) -> InvoiceFacts:
        async with self.pool.connection() as conn:
            invoice = await get_invoice(conn, input.customer_id, input.invoice_number)
        if invoice is None:
            raise ApplicationError(
                f"invoice {input.invoice_number} of {input.customer_id} not found",
                type=policies.NOT_FOUND, non_retryable=True)
        return InvoiceFacts(number=invoice.number, remaining=invoice.remaining,
                            collection_status=invoice.collection_status,
                            payment_status=invoice.payment_status,
                            paid=invoice.payment_status == "paid")

    @activity.defn(name=REOPEN_INVOICE)
    async def reopen_invoice(self, input: ReopenInvoiceInput) -> ReopenInvoiceResult:
        """Start the lifecycle of an invoice again after a reversal opened it (idempotent)."""
        invoice, klass, state = await self._invoice(input.customer_id, input.invoice_number)
        if invoice is None or invoice.payment_status == "paid":
            return ReopenInvoiceResult(started=False)
        started = await self._start(invoice, klass, state, reopen=True)
        return ReopenInvoiceResult(started=started == "started")

    @activity.defn(name=REACH_SUSPENSION)
    async def reach_suspension(self, input: ReachSuspensionInput) -> ReachSuspensionResult:
        """Record that the invoice is past its suspension time, then wake the customer.

        The customer's workflow makes the decision (it is the single writer); waking it
        with signal-with-start works whether or not it is running yet.
        """
        async with self.pool.connection() as conn:
            recorded = await mark_suspension_reached(conn, input.customer_id,
                                                     input.invoice_number, input.at)
        await wake_for_service_evaluation(
            self.client, self.task_queue, input.customer_id, EvaluateServiceSignal(
                reason=f"invoice {input.invoice_number} reached its suspension time",
                invoice_number=input.invoice_number))
        return ReachSuspensionResult(recorded=recorded)

    async def _invoice(self, customer_id: str, number: str
                       ) -> tuple[InvoiceRow | None, ClassRow, str]:
        """The invoice, its class and the customer's service state, for starting its
        workflow."""
        async with self.pool.connection() as conn:
            customer, klass = await self._customer(conn, customer_id)
            invoice = await get_invoice(conn, customer_id, number)
        return invoice, klass, customer.service_state

    async def _start(self, invoice: InvoiceRow, klass: ClassRow, service_state: str, *,
                     reopen: bool) -> str:
        """Start the invoice's workflow; a refusal (or no server) is counted and raised, so
        the caller's retry policy keeps trying until the invoice has its workflow."""
        try:
            return await start_invoice_workflow(
                self.client, self.task_queue, invoice, klass, service_state,
                planned_steps(invoice, klass), reopen=reopen)
        except (InvoiceWorkflowNotStarted, RuntimeError):
            metrics.WORKFLOW_START_FAILURES.inc()
            raise

    async def _customer(self, conn: AsyncConnection,
                        customer_id: str) -> tuple[CustomerRow, ClassRow]:
        found = await get_customer_with_class(conn, customer_id)
        if found is None:
            raise ApplicationError(str(UnknownCustomer(customer_id)), type=policies.NOT_FOUND,
                                   non_retryable=True)
        return found

