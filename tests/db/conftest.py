"""Helpers for the db tests, on top of the suite's ``database_url`` (a fresh migrated db)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg.rows import dict_row

from db.classes import ClassSpec, upsert_class
from db.collection.invoices import mark_suspension_reached
from db.customers import NewCustomer, add_customer
from db.ledger.transactions import apply_payment
from db.rows import AuditInfo
from domain.ledger.commands import (
    AssignPayment,
    EvaluateService,
    IssueInvoice,
    Reevaluate,
    ReversePayment,
)
from domain.ledger.payments import Actor, ApplyPayment, PaymentOutcome
from domain.when import overdue_instant, parse_due

ADMIN = AuditInfo(actor="alice", realm="admin", reason="test", request_id="req-1")
# The same person as a command's actor (db.ledger.transactions.audit_of maps one to the other).
ACTOR = Actor(name="alice", realm="admin", reason="test", request_id="req-1")


def at(text: str) -> datetime:
    """'2024-06-01T00:00' as an aware UTC datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[psycopg.AsyncConnection]:
    async with await psycopg.AsyncConnection.connect(database_url) as connection:
        yield connection


async def setup_customer(conn: psycopg.AsyncConnection, customer_id: str = "c1", *,
                         currency: str = "USD", threshold: int = 1000,
                         class_name: str = "residential") -> None:
    await upsert_class(conn, ClassSpec(name=class_name, currency=currency, threshold=threshold),
                       ADMIN)
    await add_customer(conn, NewCustomer(customer_id, "Carol", "carol@example.com", class_name),
                       ADMIN)


def invoice(number: str, charges: int, issued: str, due: str, customer: str = "c1", *,
            actor: Actor | None = None) -> IssueInvoice:
    """An invoice of a UTC class with no grace: S = D = the midnight after ``due``."""
    d = overdue_instant(parse_due(due), "UTC")
    return IssueInvoice(customer_id=customer, number=number, new_charges=charges,
                        issued_at=at(issued), due_text=due, overdue_at=d, suspend_at=d,
                        actor=actor)


def payment(payment_id: str, amount: int, received: str, customer: str = "c1", *,
            currency: str = "USD", processor: str = "stripe",
            actor: Actor | None = None) -> ApplyPayment:
    """The command as the ledger takes it (built unchecked: the ledger's own guards are
    what these tests exercise; ApplyPayment.build is tested in tests/unit)."""
    return ApplyPayment(
        processor=processor, payment_id=payment_id, customer_id=customer, amount=amount,
        currency=currency, received_at=at(received), source="api", actor=actor)


async def pay(conn: psycopg.AsyncConnection, payment_id: str, amount: int, received: str,
              customer: str = "c1", *, now: str | None = None, token: str | None = None,
              body: str | None = None, **kwargs: object) -> PaymentOutcome:
    """``body``: ignored (the ledger fingerprints the command itself)."""
    cmd = payment(payment_id, amount, received, customer, **kwargs)  # type: ignore[arg-type]
    return await apply_payment(conn, cmd.at(at(now or received)), token=token)


def reversal(processor: str, payment_id: str, now: datetime, *, reason: str | None = None,
             actor: Actor | None = None, customer: str = "c1") -> ReversePayment:
    return ReversePayment(customer, processor, payment_id, reason=reason, actor=actor).at(now)


def reevaluation(customer: str, now: datetime, *, dry_run: bool = False,
                 actor: Actor | None = None) -> Reevaluate:
    return Reevaluate(customer, dry_run=dry_run, actor=actor).at(now)


def service_check(customer: str, now: datetime, reason: str) -> EvaluateService:
    return EvaluateService(customer, reason).at(now)


def assignment(processor: str, payment_id: str, customer: str, now: datetime, *,
               actor: Actor | None = ACTOR) -> AssignPayment:
    return AssignPayment(customer, processor, payment_id, actor=actor).at(now)


async def reach_suspension(conn: psycopg.AsyncConnection, number: str, when: str,
                           customer: str = "c1") -> None:
    """What the invoice's workflow records when its timer for S fires."""
    assert await mark_suspension_reached(conn, customer, number, at(when))
    await conn.commit()


SNAPSHOT_TABLES = ("customer_classes", "customers", "invoices", "payments", "allocations",
                   "unmatched_payments", "service_events", "customer_operations", "audit_log",
                   "notifications", "accounts", "subscriptions")


async def snapshot(conn: psycopg.AsyncConnection,
                   tables: tuple[str, ...] = SNAPSHOT_TABLES) -> dict[str, list[dict]]:
    """Every row of every table, in a stable order, for 'nothing changed' assertions."""
    result = {}
    async with conn.cursor(row_factory=dict_row) as cur:
        for table in tables:
            await cur.execute(
                psycopg.sql.SQL("SELECT * FROM {} t ORDER BY t::text").format(
                    psycopg.sql.Identifier(table)))
            result[table] = await cur.fetchall()
    return result
