"""Reads of service_events: suspensions and resumptions (written by db/ledger/fold.py)."""

from __future__ import annotations

from psycopg import AsyncConnection, sql
from psycopg.rows import class_row

from db.rows import ServiceEventRow, columns


async def list_service_events(conn: AsyncConnection, customer_id: str) -> list[ServiceEventRow]:
    """Suspensions and resumptions of the customer, oldest first."""
    query = sql.SQL(
        "SELECT {} FROM service_events WHERE customer_id = %s ORDER BY occurred_at, id"
    ).format(columns(ServiceEventRow))
    async with conn.cursor(row_factory=class_row(ServiceEventRow)) as cur:
        await cur.execute(query, (customer_id,))
        return await cur.fetchall()
