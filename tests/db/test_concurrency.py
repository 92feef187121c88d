"""Concurrent ledger transactions of one customer stay consistent (row lock per customer)."""

from __future__ import annotations

import asyncio
from datetime import datetime

import psycopg

from db.ledger.transactions import apply_payment, issue_invoice
from domain.ledger.payments import PaymentOutcome
from tests.db.conftest import invoice, payment, setup_customer


async def _pay(url: str, n: int) -> PaymentOutcome:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        return await apply_payment(conn, payment(f"p{n}", 100 + n, "2024-06-10T00:00").at(
            datetime.fromisoformat("2024-06-10T00:00+00:00")))


async def test_twenty_concurrent_payments_keep_the_ledger_consistent(
    conn: psycopg.AsyncConnection, database_url: str,
) -> None:
    await setup_customer(conn, threshold=0)
    for month in range(1, 3):
        await issue_invoice(conn, invoice(f"INV-{month}", 1000, f"2024-0{month}-01T00:00",
                                          f"2024-0{month}-28"))

    results = await asyncio.gather(*(_pay(database_url, n) for n in range(20)))
    assert {r.status for r in results} == {"accepted"}

    cur = await conn.execute(
        """
        SELECT (SELECT sum(amount) FROM payments WHERE status = 'applied'),
               (SELECT sum(amount) FROM allocations),
               (SELECT credit FROM customers WHERE id = 'c1'),
               (SELECT balance FROM customers WHERE id = 'c1'),
               (SELECT sum(open_amount) FROM invoices),
               (SELECT sum(received) FROM invoices)
        """
    )
    paid, allocated, credit, balance, open_total, received = await cur.fetchone()  # type: ignore[misc]
    total = sum(100 + n for n in range(20))  # 2190: both invoices paid, 190 credit
    assert paid == total
    assert allocated + credit == paid
    assert received == allocated
    assert (credit, balance, open_total) == (190, -190, 0)
