"""Console search and lists at 10,000 customers (SPEC 4.6, issue 14: "pages must stay
usable at 10,000 customers; search is index-backed, every list is paginated"), on a real
PostgreSQL: results, scope, keyset pages, and the plans PostgreSQL chooses."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest

from db.console import search_customers, search_query
from tests.conftest import _drop, create_database, with_database

N = 10_000


@pytest.fixture(scope="module")
async def search_database(pg_admin_url: str, template_database: str) -> AsyncIterator[str]:
    """One database of 10,000 customers for the whole module: every test only reads it."""
    url = with_database(pg_admin_url, name := create_database(pg_admin_url, template_database))
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as c:
        await c.execute("INSERT INTO customer_classes (name, currency) VALUES ('Home', 'USD')")
        # 10,000 customers; every 100th belongs to reseller r-7; 120 are named "Zed …".
        await c.execute(
            """
            INSERT INTO customers (id, name, email, class_name, reseller_id)
            SELECT 'c' || lpad(n::text, 5, '0'),
                   CASE WHEN n %% 83 = 0 THEN 'Zed Number ' || n ELSE 'Person ' || n END,
                   'person' || n || '@example.com', 'Home',
                   CASE WHEN n %% 100 = 0 THEN 'r-7' END
              FROM generate_series(1, %s) AS n
            """, (N,))
        await c.execute(
            "INSERT INTO customers (id, name, email, class_name) VALUES"
            " ('odd_one', 'Ana Lima', 'ANA.LIMA@Example.com', 'Home'),"
            " ('x%y', 'Percent Person', 'pp@example.com', 'Home')")
        # One invoice per customer: INV-A-00001 …, and c00042's INV-2026-0042.
        await c.execute(
            """
            INSERT INTO invoices (customer_id, number, issued_at, due_text, overdue_at,
                                  suspend_at, new_charges, previous_balance, amount_due,
                                  open_amount, remaining, collection_status, payment_status)
            SELECT id, CASE WHEN id = 'c00042' THEN 'INV-2026-0042'
                            ELSE 'INV-A-' || substr(id, 2) END,
                   now(), '2026-07-01', now(), now(), 0, 0, 0, 0, 0, 'do_not_collect', 'paid'
              FROM customers WHERE id LIKE 'c%%'
            """)
        await c.execute("ANALYZE")
    yield url
    _drop(pg_admin_url, name)


@pytest.fixture
async def conn(search_database: str) -> AsyncIterator[psycopg.AsyncConnection]:
    async with await psycopg.AsyncConnection.connect(search_database, autocommit=True) as c:
        yield c


async def ids(conn, text: str, **scope) -> list[str]:
    found = await search_customers(conn, text, reseller_id=scope.get("reseller"),
                                   customer_id=scope.get("customer"), after=None, limit=50)
    return [f.id for f in found][:50]


async def test_by_id_name_email_or_invoice_number_any_case(conn) -> None:
    assert await ids(conn, "ana li") == ["odd_one"]
    assert await ids(conn, "ana.lima@EXAMPLE") == ["odd_one"]
    assert await ids(conn, "C0004") == [f"c0004{d}" for d in range(10)]
    found = await search_customers(conn, "inv-2026-00", reseller_id=None, customer_id=None,
                                   after=None, limit=50)
    assert [(f.id, f.matched) for f in found] == [("c00042", "invoice INV-2026-0042")]


async def test_like_wildcards_are_taken_literally(conn) -> None:
    assert await ids(conn, "x%") == ["x%y"]
    assert await ids(conn, "%") == []
    assert await ids(conn, "_") == []


async def test_scope_limits_the_results(conn) -> None:
    assert await ids(conn, "person", reseller="r-7") == [
        f"c{n:05d}" for n in range(100, N + 1, 100)][:50]
    assert await ids(conn, "c0010", reseller="r-7") == ["c00100"]
    assert await ids(conn, "c0004", customer="c00041") == ["c00041"]
    assert await ids(conn, "ana", reseller="r-7") == []


async def test_keyset_pages_cover_every_match_once(conn) -> None:
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        rows = await search_customers(conn, "zed", reseller_id=None, customer_id=None,
                                      after=after, limit=50)
        pages += 1
        page, more = rows[:50], len(rows) > 50
        seen += [r.id for r in page]
        if not more:
            break
        after = page[-1].id
    expected = [f"c{n:05d}" for n in range(83, N + 1, 83)]
    assert seen == expected and pages == 3  # 120 matches: 50 + 50 + 20


@pytest.mark.parametrize("text", ["ana", "person12", "c0004", "inv-2026", ""])
async def test_search_uses_indexes_not_a_scan_of_all_customers(conn, text: str) -> None:
    query, params = search_query(text, reseller_id=None, customer_id=None, after=None,
                                 limit=50)
    cur = await conn.execute(psycopg.sql.SQL("EXPLAIN (FORMAT JSON) {}").format(query), params)
    plan = (await cur.fetchone())[0]
    nodes = list(walk(plan[0]["Plan"]))
    scans = {(n["Node Type"], n.get("Relation Name")) for n in nodes}
    assert ("Seq Scan", "customers") not in scans, json.dumps(plan)
    assert ("Seq Scan", "invoices") not in scans, json.dumps(plan)
    indexes = {n.get("Index Name") for n in nodes}
    if text:
        assert {"customers_lower_id_idx", "customers_lower_name_idx",
                "customers_lower_email_idx", "invoices_lower_number_idx"} <= indexes, indexes


def walk(node: dict) -> Iterator[dict]:
    yield node
    for child in node.get("Plans", []):
        yield from walk(child)
