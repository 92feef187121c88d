"""The schema itself: every table exists, the audit log is append-only, constraints bite."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors

from tests.db.conftest import at, setup_customer, sha

TABLES = {
    "accounts", "subscriptions", "late_fees",
    "customer_classes", "customers", "invoices", "payments", "allocations",
    "unmatched_payments", "notifications", "service_events", "customer_operations",
    "audit_log", "schema_migrations",
}


async def test_migrations_create_every_table(conn: psycopg.AsyncConnection) -> None:
    cur = await conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
    )
    assert {row[0] for row in await cur.fetchall()} == TABLES
    cur = await conn.execute("SELECT version FROM schema_migrations")
    assert ("001_schema",) in await cur.fetchall()


async def _audit_row(conn: psycopg.AsyncConnection) -> None:
    await conn.execute(
        "INSERT INTO audit_log (actor, realm, action, target) VALUES ('a', 'admin', 'x', 'y')"
    )
    await conn.commit()


@pytest.mark.parametrize("statement, operation", [
    ("UPDATE audit_log SET actor = 'mallory'", "UPDATE"),
    ("DELETE FROM audit_log", "DELETE"),
    ("TRUNCATE audit_log", "TRUNCATE"),
])
async def test_audit_log_is_append_only(conn: psycopg.AsyncConnection, statement: str,
                                        operation: str) -> None:
    await _audit_row(conn)
    with pytest.raises(errors.InsufficientPrivilege,
                       match=f"audit_log is append-only: {operation} is not allowed"):
        await conn.execute(statement)
    await conn.rollback()
    cur = await conn.execute("SELECT actor FROM audit_log")
    assert await cur.fetchall() == [("a",)]


async def test_audit_log_refuses_unknown_realm(conn: psycopg.AsyncConnection) -> None:
    with pytest.raises(errors.CheckViolation):
        await conn.execute("INSERT INTO audit_log (actor, realm, action, target)"
                           " VALUES ('a', 'root', 'x', 'y')")


BAD_STATEMENTS = {
    "negative threshold":
        "INSERT INTO customer_classes (name, currency, threshold) VALUES ('x', 'USD', -1)",
    "lower-case currency": "INSERT INTO customer_classes (name, currency) VALUES ('x', 'usd')",
    "unknown language":
        "INSERT INTO customer_classes (name, currency, language) VALUES ('x', 'USD', 'fr')",
    "unknown time zone":
        "INSERT INTO customer_classes (name, currency, timezone) VALUES ('x', 'USD', 'Mars/Base')",
    "negative reminder":
        "INSERT INTO customer_classes (name, currency, reminders_seconds)"
        " VALUES ('x', 'USD', '{86400,-1}')",
    "empty class name": "INSERT INTO customer_classes (name, currency) VALUES ('', 'USD')",
    "unknown class":
        "INSERT INTO customers (id, name, email, class_name) VALUES ('c2', 'n', 'a@b', 'nope')",
    "bad service state": "UPDATE customers SET service_state = 'paused'",
    "negative credit": "UPDATE customers SET credit = -1",
    "credit with debt": "UPDATE customers SET credit = 5, balance = 10",
    "negative new charges":
        "INSERT INTO invoices (customer_id, number, issued_at, due_text, overdue_at, suspend_at,"
        " new_charges, previous_balance, amount_due, open_amount, remaining, collection_status,"
        " payment_status) VALUES ('c1', 'I', now(), 'd', now(), now(), -1, 0, -1, 0, 0,"
        " 'do_not_collect', 'paid')",
    "amount due not the sum":
        "INSERT INTO invoices (customer_id, number, issued_at, due_text, overdue_at, suspend_at,"
        " new_charges, previous_balance, amount_due, open_amount, remaining, collection_status,"
        " payment_status) VALUES ('c1', 'I', now(), 'd', now(), now(), 10, 0, 11, 10, 10,"
        " 'collect', 'unpaid')",
    "open above charges":
        "INSERT INTO invoices (customer_id, number, issued_at, due_text, overdue_at, suspend_at,"
        " new_charges, previous_balance, amount_due, open_amount, remaining, collection_status,"
        " payment_status) VALUES ('c1', 'I', now(), 'd', now(), now(), 10, 0, 10, 11, 10,"
        " 'collect', 'unpaid')",
    "bad collection status":
        "INSERT INTO invoices (customer_id, number, issued_at, due_text, overdue_at, suspend_at,"
        " new_charges, previous_balance, amount_due, open_amount, remaining, collection_status,"
        " payment_status) VALUES ('c1', 'I', now(), 'd', now(), now(), 10, 0, 10, 10, 10,"
        " 'maybe', 'unpaid')",
    "paid with money remaining":
        "INSERT INTO invoices (customer_id, number, issued_at, due_text, overdue_at, suspend_at,"
        " new_charges, previous_balance, amount_due, open_amount, remaining, collection_status,"
        " payment_status) VALUES ('c1', 'I', now(), 'd', now(), now(), 10, 0, 10, 10, 10,"
        " 'do_not_collect', 'paid')",
    "collect with nothing remaining":
        "INSERT INTO invoices (customer_id, number, issued_at, due_text, overdue_at, suspend_at,"
        " new_charges, previous_balance, amount_due, open_amount, remaining, collection_status,"
        " payment_status) VALUES ('c1', 'I', now(), 'd', now(), now(), 0, 0, 0, 0, 0,"
        " 'collect', 'paid')",
    "zero payment":
        "INSERT INTO payments (processor, payment_id, customer_id, amount, currency, received_at,"
        f" body_hash, source) VALUES ('p', 'x', 'c1', 0, 'USD', now(), '{sha('x')}', 'api')",
    "negative payment":
        "INSERT INTO payments (processor, payment_id, customer_id, amount, currency, received_at,"
        f" body_hash, source) VALUES ('p', 'x', 'c1', -5, 'USD', now(), '{sha('x')}', 'api')",
    "payment in another currency":
        "INSERT INTO payments (processor, payment_id, customer_id, amount, currency, received_at,"
        f" body_hash, source) VALUES ('p', 'x', 'c1', 5, 'EUR', now(), '{sha('x')}', 'api')",
    "bad payment source":
        "INSERT INTO payments (processor, payment_id, customer_id, amount, currency, received_at,"
        f" body_hash, source) VALUES ('p', 'x', 'c1', 5, 'USD', now(), '{sha('x')}', 'fax')",
    "body hash not sha256":
        "INSERT INTO payments (processor, payment_id, customer_id, amount, currency, received_at,"
        " body_hash, source) VALUES ('p', 'x', 'c1', 5, 'USD', now(), 'abc', 'api')",
    "bad notification kind":
        "INSERT INTO notifications (key, kind, customer_id, language, to_address, from_address,"
        " subject, message_id) VALUES ('k', 'spam', 'c1', 'en', 'a@b', 'c@d', 's', '<m@x>')",
    "header injection":
        "INSERT INTO notifications (key, kind, customer_id, language, to_address, from_address,"
        " subject, message_id) VALUES ('k', 'overdue', 'c1', 'en', 'a@b', 'c@d',"
        " E'hi\\r\\nBcc: x@y', '<m@x>')",
    "notification for unknown invoice":
        "INSERT INTO notifications (key, kind, customer_id, invoice_number, language, to_address,"
        " from_address, subject, message_id)"
        " VALUES ('k', 'overdue', 'c1', 'NOPE', 'en', 'a@b', 'c@d', 's', '<m@x>')",
    "suspension without cause":
        "INSERT INTO service_events (customer_id, state, reason, occurred_at)"
        " VALUES ('c1', 'suspended', 'r', now())",
}


@pytest.mark.parametrize("statement", BAD_STATEMENTS.values(), ids=BAD_STATEMENTS.keys())
async def test_constraints_refuse_bad_rows(conn: psycopg.AsyncConnection, statement: str) -> None:
    await setup_customer(conn)
    with pytest.raises((errors.IntegrityError, errors.InvalidTextRepresentation)):
        await conn.execute(statement)


async def test_class_currency_is_locked_once_money_exists(conn: psycopg.AsyncConnection) -> None:
    await setup_customer(conn)
    await conn.execute("UPDATE customer_classes SET currency = 'EUR'")  # no money yet: fine
    await conn.execute("UPDATE customer_classes SET currency = 'USD'")
    await conn.execute(
        "INSERT INTO payments (processor, payment_id, customer_id, amount, currency, received_at,"
        " body_hash, source) VALUES ('p', 'x', 'c1', 5, 'USD', %s, %s, 'api')",
        (at("2024-01-01T00:00"), sha("x")))
    with pytest.raises(errors.CheckViolation, match="cannot change the currency"):
        await conn.execute("UPDATE customer_classes SET currency = 'EUR'")
