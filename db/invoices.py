"""Reads and marks on single invoices used by the invoice workflow's activities."""

from __future__ import annotations

from datetime import datetime

from psycopg import AsyncConnection

from workflows.payloads import InvoiceFacts


async def get_facts(conn: AsyncConnection, customer_id: str, number: str) -> InvoiceFacts | None:
    """The invoice as the database sees it now (the source of truth for each step)."""
    cur = await conn.execute(
        "SELECT number, remaining, collection_status, payment_status, cancelled_at IS NOT NULL"
        "  FROM invoices WHERE customer_id = %s AND number = %s",
        (customer_id, number),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    number_, remaining, status, payment_status, cancelled = row
    return InvoiceFacts(number=number_, remaining=remaining, collection_status=status,
                        payment_status=payment_status, paid=payment_status == "paid",
                        cancelled=cancelled)


async def invoice_statuses(conn: AsyncConnection, customer_id: str) -> dict[str, str]:
    cur = await conn.execute(
        "SELECT number, collection_status FROM invoices"
        " WHERE customer_id = %s AND cancelled_at IS NULL", (customer_id,))
    return {number: status for number, status in await cur.fetchall()}


async def mark_suspension_reached(conn: AsyncConnection, customer_id: str, number: str,
                                  at: datetime) -> bool:
    """Record the first time the invoice reached its suspension time; True if new."""
    cur = await conn.execute(
        "UPDATE invoices SET suspension_reached_at = %s"
        " WHERE customer_id = %s AND number = %s AND suspension_reached_at IS NULL",
        (at, customer_id, number),
    )
    return cur.rowcount == 1
