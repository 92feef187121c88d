"""Ledger activities: each one transaction of db/ledger/transactions.py, idempotent on retry.

Each takes the operation's command (domain/ledger) as the customer's workflow stamped it
and answers the transaction's outcome unchanged: the same two types in every layer. The
token of every transaction (``domain.ids.transaction_token``: the update it ran for, else
the activity within its run) makes a retry after a committed first attempt return the
first attempt's result (db/ledger/tokens.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg_pool import AsyncConnectionPool
from temporalio import activity
from temporalio.exceptions import ApplicationError

from db.errors import InvalidValue, UnknownCustomer, UnknownPayment
from db.ledger import transactions as ledger
from db.ledger.unmatched import assign_unmatched as assign
from domain.ids import transaction_token
from domain.ledger.commands import (
    AssignmentOutcome,
    AssignPayment,
    ChargeLateFee,
    EvaluateService,
    HoldOutcome,
    IssueInvoice,
    IssueOutcome,
    LateFeeOutcome,
    PlaceHold,
    ReactivateCustomer,
    Reevaluate,
    ReevaluationOutcome,
    ReleaseHold,
    ReversalOutcome,
    ReversePayment,
    ServiceOutcome,
    TerminateCustomer,
    TerminationOutcome,
    WaiveLateFee,
    WaiverOutcome,
)
from domain.ledger.payments import ApplyPayment, PaymentOutcome
from domain.money import MoneyError
from workflows import policies
from workflows.ledger.payloads import (
    APPLY_PAYMENT,
    ASSIGN_UNMATCHED,
    CHARGE_LATE_FEE,
    EVALUATE_SERVICE,
    ISSUE_INVOICE,
    PLACE_HOLD,
    REACTIVATE_CUSTOMER,
    REEVALUATE_CUSTOMER,
    RELEASE_HOLD,
    REVERSE_PAYMENT,
    TERMINATE_CUSTOMER,
    WAIVE_LATE_FEE,
)


@contextmanager
def _refusals() -> Iterator[None]:
    """What will not pass on a retry fails for good, clearly: bad input, a constraint the
    data violates, an unknown customer or payment."""
    try:
        yield
    except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as err:
        raise _invalid(f"refused by the database: {str(err).splitlines()[0]}") from None
    except (InvalidValue, MoneyError) as err:
        raise _invalid(str(err)) from None
    except (UnknownCustomer, UnknownPayment) as err:
        raise ApplicationError(str(err), type=policies.NOT_FOUND, non_retryable=True) from None


def _token() -> str:
    info = activity.info()
    return transaction_token(info.workflow_run_id or "", info.activity_id)


def _invalid(message: str) -> ApplicationError:
    return ApplicationError(message, type=policies.INVALID_INPUT, non_retryable=True)


class LedgerActivities:
    """Holds the connection pool: every ledger change of every customer runs here. Each
    activity is one transaction; it takes the command and answers the transaction's
    outcome as is."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    @activity.defn(name=ISSUE_INVOICE)
    async def issue_invoice(self, command: IssueInvoice) -> IssueOutcome:
        """Record the invoice (``created``, ``exists`` or ``conflict``, each an answer);
        ``changed``: the other invoices a back-dated one re-evaluated. No service decision
        (the workflow runs evaluate_service after it when invoices changed)."""
        async with self.pool.connection() as conn:
            with _refusals():
                return await ledger.issue_invoice(conn, command, token=_token())

    @activity.defn(name=APPLY_PAYMENT)
    async def apply_payment(self, command: ApplyPayment) -> PaymentOutcome:
        """``command``: built at the edge, validated there, stamped with the workflow's
        instant (``ApplyPayment.at``)."""
        async with self.pool.connection() as conn:
            with _refusals():  # e.g. another currency than the class's (the schema's check)
                return await ledger.apply_payment(conn, command, token=_token())

    @activity.defn(name=REVERSE_PAYMENT)
    async def reverse_payment(self, command: ReversePayment) -> ReversalOutcome:
        async with self.pool.connection() as conn:
            with _refusals():
                return await ledger.reverse_payment(conn, command, token=_token())

    @activity.defn(name=ASSIGN_UNMATCHED)
    async def assign_unmatched(self, command: AssignPayment) -> AssignmentOutcome:
        async with self.pool.connection() as conn:
            with _refusals():
                return await assign(conn, command, token=_token())

    @activity.defn(name=REEVALUATE_CUSTOMER)
    async def reevaluate_customer(self, command: Reevaluate) -> ReevaluationOutcome:
        async with self.pool.connection() as conn:
            with _refusals():
                return await ledger.reevaluate(conn, command, token=_token())

    @activity.defn(name=EVALUATE_SERVICE)
    async def evaluate_service(self, command: EvaluateService) -> ServiceOutcome:
        async with self.pool.connection() as conn:
            with _refusals():
                return await ledger.evaluate_service(conn, command, token=_token())

    @activity.defn(name=CHARGE_LATE_FEE)
    async def charge_late_fee(self, command: ChargeLateFee) -> LateFeeOutcome:
        async with self.pool.connection() as conn:
            with _refusals():
                return await ledger.charge_late_fee(conn, command, token=_token())

    @activity.defn(name=WAIVE_LATE_FEE)
    async def waive_late_fee(self, command: WaiveLateFee) -> WaiverOutcome:
        async with self.pool.connection() as conn:
            with _refusals():
                return await ledger.waive_late_fee(conn, command, token=_token())

    @activity.defn(name=PLACE_HOLD)
    async def place_hold(self, command: PlaceHold) -> HoldOutcome:
        async with self.pool.connection() as conn:
            with _refusals():
                return await ledger.place_hold(conn, command, token=_token())

    @activity.defn(name=RELEASE_HOLD)
    async def release_hold(self, command: ReleaseHold) -> HoldOutcome:
        async with self.pool.connection() as conn:
            with _refusals():
                return await ledger.release_hold(conn, command, token=_token())

    @activity.defn(name=TERMINATE_CUSTOMER)
    async def terminate_customer(self, command: TerminateCustomer) -> TerminationOutcome:
        async with self.pool.connection() as conn:
            with _refusals():
                return await ledger.terminate_customer(conn, command, token=_token())

    @activity.defn(name=REACTIVATE_CUSTOMER)
    async def reactivate_customer(self, command: ReactivateCustomer) -> TerminationOutcome:
        async with self.pool.connection() as conn:
            with _refusals():
                return await ledger.reactivate_customer(conn, command, token=_token())
