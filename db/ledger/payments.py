"""Reads of payments (writes go through db/ledger/transactions.py and db/ledger/unmatched.py)."""

from __future__ import annotations

from psycopg import AsyncConnection, sql
from psycopg.rows import class_row

from db.rows import PaymentRow, columns


async def get_payment(conn: AsyncConnection, processor: str, payment_id: str) -> PaymentRow | None:
    query = sql.SQL("SELECT {} FROM payments WHERE processor = %s AND payment_id = %s").format(
        columns(PaymentRow)
    )
    async with conn.cursor(row_factory=class_row(PaymentRow)) as cur:
        await cur.execute(query, (processor, payment_id))
        return await cur.fetchone()

