"""The mark an invoice's workflow writes when it reaches its suspension time."""

from __future__ import annotations

from datetime import datetime

from psycopg import AsyncConnection


async def mark_suspension_reached(conn: AsyncConnection, customer_id: str, number: str,
                                  at: datetime) -> bool:
    """Record the first time the invoice reached its suspension time; True if new."""
    cur = await conn.execute(
        "UPDATE invoices SET suspension_reached_at = %s"
        " WHERE customer_id = %s AND number = %s AND suspension_reached_at IS NULL",
        (at, customer_id, number),
    )
    return cur.rowcount == 1
