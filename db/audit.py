"""The audit trail (SPEC 2.7): insert and read; the database refuses updates and deletes.

Targets are written ``kind:id`` so they can be searched: ``class:NAME``,
``customer:ID``, ``invoice:CUSTOMER/NUMBER``, ``payment:PROCESSOR/PAYMENT_ID``,
``unmatched:PROCESSOR/PAYMENT_ID``. Records about one customer carry ``on_behalf_of``.
"""

from __future__ import annotations

from psycopg import AsyncConnection, sql
from psycopg.rows import class_row

from db.codec import jsonb
from db.rows import AuditEntry, AuditRecord, columns


def customer_target(customer_id: str) -> str:
    return f"customer:{customer_id}"


def class_target(name: str) -> str:
    return f"class:{name}"


def invoice_target(customer_id: str, number: str) -> str:
    return f"invoice:{customer_id}/{number}"


def payment_target(processor: str, payment_id: str) -> str:
    return f"payment:{processor}/{payment_id}"


def unmatched_target(processor: str, payment_id: str) -> str:
    return f"unmatched:{processor}/{payment_id}"


async def record_audit(conn: AsyncConnection, entry: AuditEntry) -> int:
    """Insert one audit record in the caller's transaction; returns its id."""
    cur = await conn.execute(
        """
        INSERT INTO audit_log (at, actor, realm, on_behalf_of, action, target,
                               before, after, reason, request_id)
        VALUES (coalesce(%s, now()), %s, %s, %s, %s, %s, %s, %s, %s, %s)
        RETURNING id
        """,
        (entry.at, entry.actor, entry.realm, entry.on_behalf_of, entry.action, entry.target,
         jsonb(entry.before), jsonb(entry.after), entry.reason, entry.request_id),
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def list_audit(conn: AsyncConnection, *, customer_id: str | None = None,
                     target: str | None = None, limit: int = 100) -> list[AuditRecord]:
    """Newest first; ``customer_id`` matches records made for or about that customer."""
    query = sql.SQL(
        """
        SELECT {cols} FROM audit_log
         WHERE (%(customer)s::text IS NULL OR on_behalf_of = %(customer)s
                OR target = 'customer:' || %(customer)s)
           AND (%(target)s::text IS NULL OR target = %(target)s)
         ORDER BY id DESC
         LIMIT %(limit)s
        """
    ).format(cols=columns(AuditRecord))
    async with conn.cursor(row_factory=class_row(AuditRecord)) as cur:
        await cur.execute(query, {"customer": customer_id, "target": target, "limit": limit})
        return await cur.fetchall()
