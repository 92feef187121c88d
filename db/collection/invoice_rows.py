"""Reads of invoice rows and their allocations (writes go through db/ledger/transactions.py).

(db/collection/invoices.py holds the invoice workflow's own facts and marks.)
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import AsyncConnection, sql
from psycopg.rows import class_row

from db.rows import InvoiceRow, columns
from domain.hold import Hold
from domain.ledger.effects import InvoiceFacts


def facts_of(invoice: InvoiceRow, hold: Hold | None) -> InvoiceFacts:
    """An invoice's facts as its workflow sees them, with the customer's hold (SPEC 2.11)."""
    return InvoiceFacts(number=invoice.number, remaining=invoice.remaining,
                        collection_status=invoice.collection_status,
                        payment_status=invoice.payment_status,
                        paid=invoice.payment_status == "paid", hold=hold)


@dataclass(frozen=True)
class InvoiceAllocation:
    """Money of one payment applied to one invoice (derived from the fold)."""

    invoice_number: str
    processor: str
    payment_id: str
    amount: int


async def get_invoice(conn: AsyncConnection, customer_id: str, number: str) -> InvoiceRow | None:
    query = sql.SQL("SELECT {} FROM invoices WHERE customer_id = %s AND number = %s").format(
        columns(InvoiceRow)
    )
    async with conn.cursor(row_factory=class_row(InvoiceRow)) as cur:
        await cur.execute(query, (customer_id, number))
        return await cur.fetchone()


async def list_invoices(conn: AsyncConnection, customer_id: str) -> list[InvoiceRow]:
    """Every invoice of the customer, oldest first (issue time, then number): the order
    the fold allocates in (invoices_customer_issued_idx)."""
    query = sql.SQL(
        "SELECT {} FROM invoices WHERE customer_id = %s ORDER BY issued_at, number"
    ).format(columns(InvoiceRow))
    async with conn.cursor(row_factory=class_row(InvoiceRow)) as cur:
        await cur.execute(query, (customer_id,))
        return await cur.fetchall()


async def list_allocations(conn: AsyncConnection, customer_id: str) -> list[InvoiceAllocation]:
    """Where each applied payment of the customer went, by invoice then payment."""
    async with conn.cursor(row_factory=class_row(InvoiceAllocation)) as cur:
        await cur.execute(
            """
            SELECT i.number AS invoice_number, p.processor, p.payment_id, a.amount
              FROM allocations a
              JOIN invoices i ON i.id = a.invoice_id
              JOIN payments p ON p.id = a.payment_row_id
             WHERE a.customer_id = %s
             ORDER BY i.issued_at, i.number, p.id
            """,
            (customer_id,),
        )
        return await cur.fetchall()
