"""Payments for customers we do not know: stored for finance, then assigned (SPEC 4.3).

A (processor, payment_id) lives either here or in payments, never applied twice:
apply_payment treats an id held here as already received (duplicate/conflict), and
assigning turns it into a payment (source 'assigned') in one audited transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from psycopg import AsyncConnection, sql
from psycopg.rows import class_row

from db.audit import record_audit, unmatched_target
from db.codec import jsonb
from db.errors import InvalidValue, UnknownPayment
from db.ledger.fold import customer_class, lock_customer
from db.ledger.payments import get_payment
from db.ledger.tokens import store_result, stored_result
from db.ledger.transactions import (
    audit_of,
    insert_payment_and_refold,
    known_payment,
    lock_payment_key,
)
from db.rows import AuditEntry, AuditInfo, PaymentRow, UnmatchedRow, columns
from domain.ledger.commands import AssignmentOutcome, AssignPayment
from domain.ledger.payments import payment_amount, payment_currency


@dataclass(frozen=True)
class RecordUnmatched:
    processor: str
    payment_id: str
    customer_ref: str                 # the customer id the processor sent
    amount: str                       # as received (parsed with the class currency on assign)
    currency: str
    received_at: datetime
    body: dict[str, Any]              # the request body, for finance
    body_hash: str                    # same canonical hash as ledger.fingerprint(ApplyPayment)
    token: str | None = None
    audit: AuditInfo | None = None    # given when a person posts it by hand (SPEC 2.7)


@dataclass(frozen=True)
class RecordUnmatchedResult:
    """``unmatched`` (stored now); ``duplicate`` (same id and body seen before, nothing
    changed); ``conflict`` (same id, other body, nothing written)."""

    status: Literal["unmatched", "duplicate", "conflict"]
    unmatched: UnmatchedRow | None    # the stored row (None when the id is a real payment)
    payment: PaymentRow | None        # the payment holding this id, if any


async def record_unmatched(conn: AsyncConnection, cmd: RecordUnmatched) -> RecordUnmatchedResult:
    """Store a payment whose customer is unknown; idempotent by (processor, payment_id)."""
    if cmd.received_at.tzinfo is None:
        raise InvalidValue("received_at must be timezone-aware")
    async with conn.transaction():
        await lock_payment_key(conn, cmd.processor, cmd.payment_id)
        if (done := await stored_result(conn, cmd.token, "record_unmatched",
                                        RecordUnmatchedResult)) is not None:
            return done
        result = await _record(conn, cmd)
        await store_result(conn, cmd.token, "record_unmatched", None, result)
        return result


async def _record(conn: AsyncConnection, cmd: RecordUnmatched) -> RecordUnmatchedResult:
    status = await known_payment(conn, cmd.processor, cmd.payment_id, cmd.body_hash)
    if status is not None:
        payment = await get_payment(conn, cmd.processor, cmd.payment_id)
        held = None if payment else await get_unmatched(conn, cmd.processor, cmd.payment_id)
        return RecordUnmatchedResult(status, held, payment)
    query = sql.SQL(
        "INSERT INTO unmatched_payments (processor, payment_id, customer_ref, amount, currency,"
        " received_at, body, body_hash) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING {}"
    ).format(columns(UnmatchedRow))
    async with conn.cursor(row_factory=class_row(UnmatchedRow)) as cur:
        await cur.execute(query, (cmd.processor, cmd.payment_id, cmd.customer_ref, cmd.amount,
                                  cmd.currency, cmd.received_at, jsonb(cmd.body), cmd.body_hash))
        row = await cur.fetchone()
    if cmd.audit is not None:
        # Only a stored row is audited, as for applied payments: a duplicate changed nothing.
        # No on_behalf_of: nobody knows the customer yet (customer_ref is in the row).
        await record_audit(conn, AuditEntry.of(
            cmd.audit, "payment.post", unmatched_target(cmd.processor, cmd.payment_id),
            after=row))
    return RecordUnmatchedResult("unmatched", row, None)


async def assign_unmatched(conn: AsyncConnection, cmd: AssignPayment, *,
                           token: str | None = None) -> AssignmentOutcome:
    """Turn an unmatched payment into a payment of ``cmd.customer_id`` at ``cmd.now``,
    audited (by ``cmd.actor``, else as the system), one transaction: ``assigned``, or
    ``already_assigned`` (nothing changed; the customer's state as it is).

    Raises UnknownCustomer, UnknownPayment, InvalidPayment (another currency, or an amount as
    received is not valid for the class currency); nothing written then.
    """
    now = cmd.now
    if now is None or now.tzinfo is None:
        raise InvalidValue("an assignment runs at an aware instant: AssignPayment.at(now)")
    audit = audit_of(cmd.actor) or AuditInfo(actor="dunning", realm="system")
    async with conn.transaction():
        customer = await lock_customer(conn, cmd.customer_id)  # customer first, then key
        if (done := await stored_result(conn, token, "assign_unmatched",
                                        AssignmentOutcome)) is not None:
            return done
        await lock_payment_key(conn, cmd.processor, cmd.payment_id)
        before = await get_unmatched(conn, cmd.processor, cmd.payment_id)
        if before is None:
            raise UnknownPayment(cmd.processor, cmd.payment_id, "no such unmatched payment")
        klass = await customer_class(conn, customer)
        if before.status == "assigned":
            result = AssignmentOutcome(
                status="already_assigned", service_state=customer.service_state,
                balance=customer.balance, payment_receipts=klass.payment_receipts,
                class_name=klass.name)
        else:
            # The payment's one currency and amount rules, now that its class is known.
            code = payment_currency(before.currency, klass.currency, klass.name)
            amount = payment_amount(before.amount, code)
            applied = await insert_payment_and_refold(
                conn, customer, klass, before.processor, before.payment_id, amount,
                before.received_at, before.body_hash, "assigned", now, None,
                reason=f"unmatched payment {before.processor}/{before.payment_id} assigned")
            after = await _mark_assigned(conn, before.id, customer.id, now, audit.actor)
            payment = await get_payment(conn, before.processor, before.payment_id)
            await record_audit(conn, AuditEntry.of(
                audit, "unmatched.assign", unmatched_target(cmd.processor, cmd.payment_id),
                on_behalf_of=customer.id, before=before,
                after={"unmatched": after, "payment": payment}))
            result = AssignmentOutcome(
                status="assigned", service_state=applied.service_state,
                balance=applied.balance, changed=applied.changed,
                transition=applied.transition, payment_receipts=applied.payment_receipts,
                class_name=applied.class_name)
        await store_result(conn, token, "assign_unmatched", customer.id, result)
        return result


async def get_unmatched(
    conn: AsyncConnection, processor: str, payment_id: str
) -> UnmatchedRow | None:
    query = sql.SQL(
        "SELECT {} FROM unmatched_payments WHERE processor = %s AND payment_id = %s"
    ).format(columns(UnmatchedRow))
    async with conn.cursor(row_factory=class_row(UnmatchedRow)) as cur:
        await cur.execute(query, (processor, payment_id))
        return await cur.fetchone()


async def list_unmatched(conn: AsyncConnection, *,
                         status: Literal["unmatched", "assigned"] | None = "unmatched",
                         limit: int = 100) -> list[UnmatchedRow]:
    """Oldest first; ``status=None`` lists every one."""
    query = sql.SQL(
        "SELECT {} FROM unmatched_payments WHERE (%(status)s::text IS NULL OR status = %(status)s)"
        " ORDER BY id LIMIT %(limit)s"
    ).format(columns(UnmatchedRow))
    async with conn.cursor(row_factory=class_row(UnmatchedRow)) as cur:
        await cur.execute(query, {"status": status, "limit": limit})
        return await cur.fetchall()


async def _mark_assigned(conn: AsyncConnection, row_id: int, customer_id: str, at: datetime,
                         actor: str) -> UnmatchedRow:
    query = sql.SQL(
        "UPDATE unmatched_payments SET status = 'assigned', assigned_customer = %s,"
        " assigned_at = %s, assigned_by = %s WHERE id = %s RETURNING {}"
    ).format(columns(UnmatchedRow))
    async with conn.cursor(row_factory=class_row(UnmatchedRow)) as cur:
        await cur.execute(query, (customer_id, at, actor, row_id))
        row = await cur.fetchone()
    assert row is not None
    return row
