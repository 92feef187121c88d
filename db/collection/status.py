"""The customer status document of SPEC 4.2 (``dunning status ID --json``, GET /v1/customers/ID).

Amounts are decimal strings with the currency's exponent; instants are ISO 8601 in UTC.
Every invoice is listed, oldest first, paid ones included.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection

from db.audit import customer_target, record_audit
from db.collection.invoice_rows import list_invoices
from db.customers import get_customer_with_class
from db.errors import InvalidValue, UnknownCustomer
from db.rows import AuditEntry, AuditInfo, InvoiceRow
from domain.hold import Hold
from domain.money import Currency, format_amount
from domain.money import currency as lookup_currency
from domain.when import parse_due


async def customer_status(conn: AsyncConnection, customer_id: str, now: datetime, *,
                          audit: AuditInfo | None = None) -> dict[str, Any]:
    """The status document at ``now`` (which decides ``overdue``). Raises UnknownCustomer.

    With ``audit`` (a read through an admin interface, SPEC 2.7) the read is recorded in
    the same transaction.
    """
    if now.tzinfo is None:
        raise InvalidValue("now must be timezone-aware")
    async with conn.transaction():
        found = await get_customer_with_class(conn, customer_id)
        if found is None:
            raise UnknownCustomer(customer_id)
        customer, klass = found
        cur = lookup_currency(klass.currency)
        invoices = await list_invoices(conn, customer_id)
        document = {
            "customer_id": customer.id,
            "class": klass.name,
            "currency": klass.currency,
            "service_state": customer.service_state,
            "balance": format_amount(customer.balance, cur),
            "hold": hold_document(customer.hold),
            "invoices": [_invoice(i, cur, now) for i in invoices],
        }
        if audit is not None:
            await record_audit(conn, AuditEntry.of(audit, "customer.read",
                                                   customer_target(customer_id),
                                                   on_behalf_of=customer_id))
        return document


def _invoice(row: InvoiceRow, cur: Currency, now: datetime) -> dict[str, Any]:
    return {
        "number": row.number,
        "issued_at": _utc(row.issued_at),
        "due_date": _due(row.due_text),
        "amount_due": format_amount(row.amount_due, cur),
        "remaining": format_amount(row.remaining, cur),
        "collection_status": row.collection_status,
        "payment_status": row.payment_status,
        "overdue": now >= row.overdue_at and row.remaining > 0,
        # When the suspension happens (S', SPEC 2.10), and S and why when working time moved it.
        "suspension_at": _utc(row.suspend_at),
        "suspension_moved": None if row.suspension_moved_from is None else {
            "from": _utc(row.suspension_moved_from), "why": row.suspension_moved_why},
        # The late fee charged on it and not waived (SPEC 2.9), part of its remaining.
        "late_fee": format_amount(row.fees, cur) if row.fees else None,
    }


def hold_document(hold: Hold | None) -> dict[str, Any] | None:
    """The status document's ``hold`` (SPEC 2.11): until (None: until released), reason,
    actor, and when it was placed and whether it resumed the service."""
    if hold is None:
        return None
    return {"until": None if hold.until is None else _utc(hold.until), "reason": hold.reason,
            "actor": hold.actor, "placed_at": _utc(hold.placed_at), "resume": hold.resume}


def _utc(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat()


def _due(text: str) -> str:
    """The due date as given, normalised ("2026-06-30" or an ISO instant with its offset)."""
    try:
        return parse_due(text).isoformat()
    except ValueError:
        return text  # stored before stricter parsing: show it as it was given
