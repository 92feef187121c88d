"""Ledger activities: each one transaction of db/ledger/transactions.py, idempotent on retry.

Each takes the operation's command (domain/ledger) as the customer's workflow stamped it
and answers its outcome; the mapping from the transaction's record to the outcome is
written once per operation, here. The token of every transaction is the activity's
identity within its workflow run, so a retry after a committed first attempt returns the
first attempt's result (db/ledger/tokens.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg_pool import AsyncConnectionPool
from temporalio import activity
from temporalio.exceptions import ApplicationError

from db.collection.invoice_rows import list_invoices
from db.customers import get_customer
from db.errors import CurrencyMismatch, InvalidValue, UnknownCustomer, UnknownPayment
from db.ledger import transactions as ledger
from db.ledger.fold import ServiceEvent
from db.ledger.unmatched import assign_unmatched as assign
from db.rows import InvoiceRow
from domain.ledger.commands import (
    AssignmentOutcome,
    AssignPayment,
    EvaluateService,
    InvoiceChange,
    IssuedInvoice,
    IssueInvoice,
    IssueOutcome,
    Reevaluate,
    ReevaluationOutcome,
    ReversalOutcome,
    ReversePayment,
    ServiceOutcome,
)
from domain.ledger.effects import ServiceTransition
from domain.ledger.payments import ApplyPayment, PaymentOutcome
from domain.money import MoneyError
from workflows import policies
from workflows.ledger.payloads import (
    APPLY_PAYMENT,
    ASSIGN_UNMATCHED,
    EVALUATE_SERVICE,
    ISSUE_INVOICE,
    REEVALUATE_CUSTOMER,
    REVERSE_PAYMENT,
)


@contextmanager
def _refusals() -> Iterator[None]:
    """What will not pass on a retry fails for good, clearly: bad input, a constraint the
    data violates, an unknown customer or payment."""
    try:
        yield
    except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as err:
        raise _invalid(f"refused by the database: {str(err).splitlines()[0]}") from None
    except (InvalidValue, CurrencyMismatch, MoneyError) as err:
        raise _invalid(str(err)) from None
    except (UnknownCustomer, UnknownPayment) as err:
        raise ApplicationError(str(err), type=policies.NOT_FOUND, non_retryable=True) from None


def _token() -> str:
    info = activity.info()
    return f"{info.workflow_run_id}:{info.activity_id}"


def _invalid(message: str) -> ApplicationError:
    return ApplicationError(message, type=policies.INVALID_INPUT, non_retryable=True)


def _transition(event: ServiceEvent | None) -> ServiceTransition | None:
    if event is None or event.event_id is None:
        return None
    return ServiceTransition(state=event.state, causes=list(event.causes),
                             event_id=event.event_id)


def _before(event: ServiceEvent | None, after: str) -> str:
    return event.previous_state if event is not None else after


def _issued(invoice: InvoiceRow) -> IssuedInvoice:
    return IssuedInvoice(
        customer_id=invoice.customer_id, number=invoice.number,
        new_charges=invoice.new_charges, previous_balance=invoice.previous_balance,
        amount_due=invoice.amount_due, remaining=invoice.remaining,
        collection_status=invoice.collection_status, payment_status=invoice.payment_status,
        issued_at=invoice.issued_at, overdue_at=invoice.overdue_at,
        suspend_at=invoice.suspend_at)


class LedgerActivities:
    """Holds the connection pool: every ledger change of every customer runs here."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    @activity.defn(name=ISSUE_INVOICE)
    async def issue_invoice(self, command: IssueInvoice) -> IssueOutcome:
        """Record the invoice (``created``, ``exists`` or ``conflict``, each an answer);
        ``changed``: the other invoices a back-dated one re-evaluated. No service decision
        (the workflow runs evaluate_service after it when invoices changed)."""
        async with self.pool.connection() as conn:
            with _refusals():
                result = await ledger.issue_invoice(conn, command, token=_token())
        return IssueOutcome(
            status=result.status, invoice=_issued(result.invoice),
            service_state=result.service_state, balance=result.balance,
            class_name=result.class_name, conflict_fields=list(result.conflict_fields),
            changed=list(result.changes))

    @activity.defn(name=APPLY_PAYMENT)
    async def apply_payment(self, command: ApplyPayment) -> PaymentOutcome:
        """``command``: built at the edge, validated there, stamped with the workflow's
        instant (``ApplyPayment.at``)."""
        async with self.pool.connection() as conn:
            with _refusals():  # e.g. another currency than the class's (the schema's check)
                result = await ledger.apply_payment(conn, command, token=_token())
        return PaymentOutcome(
            status=result.status, service_state=result.service_state, balance=result.balance,
            changed=list(result.changes), transition=_transition(result.service),
            payment_receipts=result.payment_receipts, class_name=result.class_name)

    @activity.defn(name=REVERSE_PAYMENT)
    async def reverse_payment(self, command: ReversePayment) -> ReversalOutcome:
        async with self.pool.connection() as conn:
            with _refusals():
                result = await ledger.reverse_payment(conn, command, token=_token())
        return ReversalOutcome(
            status=result.status, service_state=result.service_state,
            service_before=_before(result.service, result.service_state),
            balance=result.balance, changed=list(result.changes),
            transition=_transition(result.service), class_name=result.class_name)

    @activity.defn(name=ASSIGN_UNMATCHED)
    async def assign_unmatched(self, command: AssignPayment) -> AssignmentOutcome:
        async with self.pool.connection() as conn:
            with _refusals():
                result = await assign(conn, command, token=_token())
            applied = result.applied
            if applied is None:  # already assigned: nothing changed, answer the state
                customer = await get_customer(conn, command.customer_id)
                assert customer is not None  # the transaction locked it
                return AssignmentOutcome(status=result.status,
                                         service_state=customer.service_state,
                                         balance=customer.balance)
        return AssignmentOutcome(
            status=result.status, service_state=applied.service_state,
            balance=applied.balance, changed=list(applied.changes),
            transition=_transition(applied.service),
            payment_receipts=applied.payment_receipts, class_name=applied.class_name)

    @activity.defn(name=REEVALUATE_CUSTOMER)
    async def reevaluate_customer(self, command: Reevaluate) -> ReevaluationOutcome:
        async with self.pool.connection() as conn:
            before = {i.number: i.collection_status
                      for i in await list_invoices(conn, command.customer_id)}
            with _refusals():
                result = await ledger.reevaluate(conn, command, token=_token())
        return ReevaluationOutcome(
            customer_id=command.customer_id, dry_run=command.dry_run,
            changes=[InvoiceChange(number=c.number, before_status=before.get(c.number),
                                   after_status=c.collection_status, remaining=c.remaining)
                     for c in result.changes],
            service_before=_before(result.service, result.service_state),
            service_after=result.service_state, balance=result.balance,
            changed=list(result.changes), transition=_transition(result.service),
            class_name=result.class_name)

    @activity.defn(name=EVALUATE_SERVICE)
    async def evaluate_service(self, command: EvaluateService) -> ServiceOutcome:
        async with self.pool.connection() as conn:
            with _refusals():
                result = await ledger.evaluate_service(conn, command, token=_token())
        return ServiceOutcome(
            service_state=result.service_state,
            service_before=_before(result.service, result.service_state),
            balance=result.balance, transition=_transition(result.service))
