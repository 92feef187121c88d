"""Load a customer's inputs, run the domain fold, store its outputs.

Every ledger transaction ends here: it locks the customer row, changes an input (an
invoice, a payment, a reversal) and calls ``refold``, which recomputes the whole customer
with ``domain.ledger.allocation.build_ledger`` and ``domain.collection.evaluation`` and
writes back only what changed. No SPEC 2 rule lives in this module: it only moves data
between rows and the domain's dataclasses.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from psycopg import AsyncConnection, sql
from psycopg.rows import class_row

from db.classes import policy_of
from db.collection.invoice_rows import list_invoices
from db.errors import UnknownCustomer
from db.rows import ClassRow, CustomerRow, InvoiceRow, PaymentRow, columns
from domain.collection.evaluation import (
    CollectionStatus,
    PaymentStatus,
    ServiceState,
    SuspensionCandidate,
    decide_service,
    evaluate,
)
from domain.collection.policy import decide_termination
from domain.ledger.allocation import FeeEntry, InvoiceEntry, PaymentEntry, build_ledger
from domain.ledger.effects import InvoiceFacts


@dataclass(frozen=True)
class ServiceEvent:
    """The customer's service changed state, as recorded: ``event_id`` is the
    service_events row (what crosses Temporal of it is domain's ServiceEvent)."""

    state: str
    previous_state: str
    causes: tuple[str, ...]
    reason: str
    occurred_at: datetime
    event_id: int | None  # None only in a dry run (the row was rolled back)
    terminate_at: datetime | None = None  # a suspension's termination time (SPEC 2.9)


@dataclass(frozen=True)
class PendingInvoice:
    """An invoice to insert with the derived values the fold gives it."""

    number: str
    issued_at: datetime
    due_text: str
    overdue_at: datetime
    suspend_at: datetime
    new_charges: int
    suspension_moved_from: datetime | None = None
    suspension_moved_why: str | None = None


@dataclass(frozen=True)
class FoldOutcome:
    customer: CustomerRow          # after the fold (balance, credit, service state)
    invoices: tuple[InvoiceRow, ...]  # live invoices after the fold, oldest first
    changes: tuple[InvoiceFacts, ...]  # invoices whose remaining or a status changed
    service: ServiceEvent | None
    allocations: tuple[tuple[int, str, int], ...]  # (payments.id, invoice number, amount)


async def lock_customer(conn: AsyncConnection, customer_id: str) -> CustomerRow:
    """Serialise every ledger transaction of one customer on its row.

    NO KEY UPDATE rather than UPDATE: it conflicts with itself (so ledger operations of a
    customer run one at a time) but not with the KEY SHARE locks that inserts referencing
    the customer take, so notifications can be written meanwhile.
    """
    query = sql.SQL("SELECT {} FROM customers WHERE id = %s FOR NO KEY UPDATE").format(
        columns(CustomerRow)
    )
    async with conn.cursor(row_factory=class_row(CustomerRow)) as cur:
        await cur.execute(query, (customer_id,))
        row = await cur.fetchone()
    if row is None:
        raise UnknownCustomer(customer_id)
    return row


async def customer_class(conn: AsyncConnection, customer: CustomerRow) -> ClassRow:
    query = sql.SQL("SELECT {} FROM customer_classes WHERE name = %s").format(columns(ClassRow))
    async with conn.cursor(row_factory=class_row(ClassRow)) as cur:
        await cur.execute(query, (customer.class_name,))
        row = await cur.fetchone()
    assert row is not None  # foreign key
    return row


async def applied_payments(conn: AsyncConnection, customer_id: str) -> list[PaymentRow]:
    """Non-reversed payments in recording order (the domain keeps it for equal instants)."""
    query = sql.SQL(
        "SELECT {} FROM payments WHERE customer_id = %s AND status = 'applied' ORDER BY id"
    ).format(columns(PaymentRow))
    async with conn.cursor(row_factory=class_row(PaymentRow)) as cur:
        await cur.execute(query, (customer_id,))
        return await cur.fetchall()


async def charged_fees(conn: AsyncConnection, customer_id: str) -> list[FeeEntry]:
    """The customer's late fees the fold counts: every one charged and not waived."""
    cur = await conn.execute(
        "SELECT i.number, f.charged_at, f.amount FROM late_fees f"
        " JOIN invoices i ON i.id = f.invoice_id"
        " WHERE f.customer_id = %s AND f.waived_at IS NULL ORDER BY f.id", (customer_id,))
    return [FeeEntry(number, charged_at, amount) for number, charged_at, amount
            in await cur.fetchall()]


async def fee_of(conn: AsyncConnection, invoice_id: int) -> int | None:
    """The late fee charged on an invoice (waived or not), for its mail; None when none."""
    cur = await conn.execute("SELECT amount FROM late_fees WHERE invoice_id = %s",
                             (invoice_id,))
    row = await cur.fetchone()
    return None if row is None else int(row[0])


async def refold(conn: AsyncConnection, customer: CustomerRow, klass: ClassRow, *,
                 now: datetime | None, reason: str,
                 pending: PendingInvoice | None = None) -> FoldOutcome:
    """Recompute the customer's ledger and statuses, store them; decide service if ``now``.

    Call with the customer row locked (``lock_customer``) inside a transaction.
    """
    before = await list_invoices(conn, customer.id)
    payments = await applied_payments(conn, customer.id)
    entries = [InvoiceEntry(i.number, i.issued_at, i.new_charges) for i in before]
    if pending is not None:
        entries.append(InvoiceEntry(pending.number, pending.issued_at, pending.new_charges))
    ledger = build_ledger(entries, [PaymentEntry(str(p.id), p.received_at, p.amount)
                                    for p in payments],
                          await charged_fees(conn, customer.id))
    evaluations = {e.number: e for e in evaluate(ledger, klass.threshold)}

    rows: dict[str, InvoiceRow] = {}
    changes: list[InvoiceFacts] = []
    old_by_number = {row.number: row for row in before}
    for balance in ledger.invoices:
        ev = evaluations[balance.number]
        derived = {
            "previous_balance": balance.previous_balance,
            "amount_due": balance.amount_due,
            "open_amount": balance.open_amount,
            "remaining": balance.remaining,
            "received": balance.received,
            "fees": balance.fees,
            "collection_status": str(ev.collection_status),
            "payment_status": str(ev.payment_status),
        }
        old = old_by_number.get(balance.number)
        if old is None:
            assert pending is not None and pending.number == balance.number
            rows[balance.number] = await _insert_invoice(conn, customer.id, pending, derived)
            continue
        if all(getattr(old, name) == value for name, value in derived.items()):
            rows[balance.number] = old
            continue
        rows[balance.number] = await _update_invoice(conn, old.id, derived)
        if (old.remaining, old.collection_status, old.payment_status) != (
            ev.remaining, ev.collection_status, ev.payment_status
        ):
            changes.append(InvoiceFacts(
                number=balance.number,
                remaining=ev.remaining,
                collection_status=str(ev.collection_status),
                payment_status=str(ev.payment_status),
                paid=ev.payment_status == PaymentStatus.PAID,
                hold=customer.hold,
            ))

    invoice_ids = {number: row.id for number, row in rows.items()}
    amounts: dict[tuple[int, str], int] = defaultdict(int)
    for allocation in ledger.allocations:
        amounts[(int(allocation.payment_key), allocation.invoice_number)] += allocation.amount
    allocations = tuple((pid, number, amount) for (pid, number), amount in amounts.items())
    await _replace_allocations(conn, customer.id, [
        (pid, invoice_ids[number], amount) for pid, number, amount in allocations
    ])

    if (customer.balance, customer.credit) != (ledger.balance, ledger.credit):
        customer = await _update_customer_money(conn, customer.id, ledger.balance, ledger.credit)

    ordered = tuple(rows[b.number] for b in ledger.invoices)
    service = None
    if now is not None:
        customer, service, _ = await decide_and_record_service(
            conn, customer, ordered, now, reason, klass=klass
        )
    return FoldOutcome(customer, ordered, tuple(changes), service, allocations)


async def decide_and_record_service(
    conn: AsyncConnection, customer: CustomerRow, invoices: tuple[InvoiceRow, ...],
    now: datetime, reason: str, *, resume: bool = False,
    klass: ClassRow | None = None,
) -> tuple[CustomerRow, ServiceEvent | None, tuple[str, ...]]:
    """Ask the domain for the service state; record a change as happening at ``now``.

    Returns the customer row after, the transition if the state changed, and the causes
    (invoice numbers) of a suspension at ``now`` (empty when the service should be active).
    ``resume``: decide as if the service were active: a hold placed with --resume (SPEC
    2.11), or a terminated customer reactivated (SPEC 2.9). A suspension of a class with
    terminate-after carries its termination time.
    """
    # "Past S" is what the invoice's own workflow recorded when its timer for S fired
    # (suspension_reached_at), so this decision never compares instants of two clocks.
    decision = decide_service(
        (SuspensionCandidate(i.number, i.suspension_reached_at is not None,
                             CollectionStatus(i.collection_status), i.remaining)
         for i in invoices),
        held=customer.hold is not None,
        current=ServiceState.ACTIVE if resume else customer.service_state,
    )
    causes = tuple(decision.causes)
    if decision.state == customer.service_state:
        return customer, None, causes
    query = sql.SQL(
        "UPDATE customers SET service_state = %s, service_changed_at = %s WHERE id = %s"
        " RETURNING {}"
    ).format(columns(CustomerRow))
    async with conn.cursor(row_factory=class_row(CustomerRow)) as cur:
        await cur.execute(query, (str(decision.state), now, customer.id))
        updated = await cur.fetchone()
    assert updated is not None
    cur2 = await conn.execute(
        "INSERT INTO service_events (customer_id, state, causes, reason, occurred_at)"
        " VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (customer.id, str(decision.state), list(decision.causes), reason, now),
    )
    event = await cur2.fetchone()
    assert event is not None
    terminate_at = None
    if decision.state == ServiceState.SUSPENDED:
        policy = policy_of(klass if klass is not None else await customer_class(conn, customer))
        terminate_at = decide_termination(policy, service_state=str(decision.state),
                                          suspended_since=now, hold=None, now=now).due_at
    return updated, ServiceEvent(
        state=str(decision.state), previous_state=customer.service_state,
        causes=causes, reason=reason, occurred_at=now, event_id=int(event[0]),
        terminate_at=terminate_at,
    ), causes


async def _insert_invoice(conn: AsyncConnection, customer_id: str, pending: PendingInvoice,
                          derived: dict[str, object]) -> InvoiceRow:
    query = sql.SQL(
        """
        INSERT INTO invoices (customer_id, number, issued_at, due_text, overdue_at, suspend_at,
                              new_charges, previous_balance, amount_due, open_amount, remaining,
                              received, collection_status, payment_status,
                              suspension_moved_from, suspension_moved_why)
        VALUES (%(customer_id)s, %(number)s, %(issued_at)s, %(due_text)s, %(overdue_at)s,
                %(suspend_at)s, %(new_charges)s, %(previous_balance)s, %(amount_due)s,
                %(open_amount)s, %(remaining)s, %(received)s, %(collection_status)s,
                %(payment_status)s, %(suspension_moved_from)s, %(suspension_moved_why)s)
        RETURNING {}
        """
    ).format(columns(InvoiceRow))
    params = {
        "customer_id": customer_id, "number": pending.number, "issued_at": pending.issued_at,
        "due_text": pending.due_text, "overdue_at": pending.overdue_at,
        "suspend_at": pending.suspend_at, "new_charges": pending.new_charges,
        "suspension_moved_from": pending.suspension_moved_from,
        "suspension_moved_why": pending.suspension_moved_why, **derived,
    }
    async with conn.cursor(row_factory=class_row(InvoiceRow)) as cur:
        await cur.execute(query, params)
        row = await cur.fetchone()
    assert row is not None
    return row


async def _update_invoice(conn: AsyncConnection, invoice_id: int,
                          derived: dict[str, object]) -> InvoiceRow:
    query = sql.SQL(
        """
        UPDATE invoices
           SET previous_balance = %(previous_balance)s, amount_due = %(amount_due)s,
               open_amount = %(open_amount)s, remaining = %(remaining)s,
               received = %(received)s, collection_status = %(collection_status)s,
               payment_status = %(payment_status)s, fees = %(fees)s
         WHERE id = %(id)s
        RETURNING {}
        """
    ).format(columns(InvoiceRow))
    async with conn.cursor(row_factory=class_row(InvoiceRow)) as cur:
        await cur.execute(query, {"id": invoice_id, **derived})
        row = await cur.fetchone()
    assert row is not None
    return row


async def _replace_allocations(conn: AsyncConnection, customer_id: str,
                               wanted: list[tuple[int, int, int]]) -> None:
    """Make the stored allocations equal ``wanted`` (payments.id, invoices.id, amount)."""
    cur = await conn.execute(
        "SELECT payment_row_id, invoice_id, amount FROM allocations WHERE customer_id = %s",
        (customer_id,),
    )
    if set(await cur.fetchall()) == set(wanted):
        return  # unchanged: spare the rewrite
    await conn.execute("DELETE FROM allocations WHERE customer_id = %s", (customer_id,))
    if wanted:
        await conn.execute(
            "INSERT INTO allocations (customer_id, payment_row_id, invoice_id, amount)"
            " SELECT %s, p, i, a"
            " FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) AS t(p, i, a)",
            (customer_id, [w[0] for w in wanted], [w[1] for w in wanted], [w[2] for w in wanted]),
        )


async def _update_customer_money(conn: AsyncConnection, customer_id: str, balance: int,
                                 credit: int) -> CustomerRow:
    query = sql.SQL(
        "UPDATE customers SET balance = %s, credit = %s WHERE id = %s RETURNING {}"
    ).format(columns(CustomerRow))
    async with conn.cursor(row_factory=class_row(CustomerRow)) as cur:
        await cur.execute(query, (balance, credit, customer_id))
        row = await cur.fetchone()
    assert row is not None
    return row
