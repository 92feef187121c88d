"""Payments for unknown customers: kept, deduplicated, then assigned by finance."""

from __future__ import annotations

import psycopg
import pytest

from db.audit import list_audit
from db.collection.invoice_rows import list_allocations
from db.errors import UnknownCustomer, UnknownPayment
from db.ledger.payments import get_payment
from db.ledger.transactions import body_hash, issue_invoice, reverse_payment
from db.ledger.unmatched import (
    RecordUnmatched,
    assign_unmatched,
    get_unmatched,
    list_unmatched,
    record_unmatched,
)
from domain.ledger.payments import InvalidPayment
from tests.db.conftest import (
    assignment,
    at,
    invoice,
    pay,
    reversal,
    setup_customer,
    sha,
    snapshot,
)

BODY = {
    "payment_id": "p9",
    "processor": "stripe",
    "customer_id": "c1",
    "amount": "15.00",
    "currency": "USD",
    "received_at": "2024-07-02T10:00:00+00:00",
}


def _unmatched(body: dict = BODY, token: str | None = None) -> RecordUnmatched:
    return RecordUnmatched(
        processor=body["processor"],
        payment_id=body["payment_id"],
        customer_ref=body["customer_id"],
        amount=body["amount"],
        currency=body["currency"],
        received_at=at("2024-07-02T10:00"),
        body=body,
        body_hash=body_hash(body),
        token=token,
    )


async def test_unknown_customer_payment_is_kept_then_assigned(
    conn: psycopg.AsyncConnection,
) -> None:
    recorded = await record_unmatched(conn, _unmatched(token="rec-1"))
    assert recorded.status == "unmatched"
    assert recorded.unmatched is not None and recorded.unmatched.body == BODY
    assert await record_unmatched(conn, _unmatched(token="rec-1")) == recorded
    before = await snapshot(conn)
    assert (await record_unmatched(conn, _unmatched())).status == "duplicate"
    assert (
        await record_unmatched(conn, _unmatched({**BODY, "amount": "16.00"}))
    ).status == "conflict"
    assert await snapshot(conn) == before

    # The customer appears later; the processor's retry must not apply it a second time.
    await setup_customer(conn, threshold=1000)
    await issue_invoice(conn, invoice("INV-05", 1000, "2024-05-01T00:00", "2024-05-31"))
    await issue_invoice(conn, invoice("INV-06", 1000, "2024-06-01T00:00", "2024-06-30"))
    retry = await pay(conn, "p9", 1500, "2024-07-02T10:00", body="ignored")
    assert (retry.status, retry.changed) == ("conflict", [])
    assert await get_payment(conn, "stripe", "p9") is None
    with pytest.raises(UnknownPayment, match="unmatched payment that was never applied"):
        await reverse_payment(conn, reversal("stripe", "p9", at("2024-07-03T00:00")))

    assigned = await assign_unmatched(
        conn, assignment("stripe", "p9", "c1", at("2024-07-03T00:00")), token="assign-1"
    )
    assert assigned.status == "assigned"
    held = await get_unmatched(conn, "stripe", "p9")
    assert held is not None and held.status == "assigned"
    assert (held.assigned_customer, held.assigned_by) == ("c1", "alice")
    payment = await get_payment(conn, "stripe", "p9")
    assert payment is not None
    assert (payment.amount, payment.source) == (1500, "assigned")
    assert payment.received_at == at("2024-07-02T10:00")
    assert assigned.balance == 500
    assert [(a.invoice_number, a.payment_id, a.amount)
            for a in await list_allocations(conn, "c1")] == [
        ("INV-05", "p9", 1000),
        ("INV-06", "p9", 500),
    ]
    assert [(c.number, c.payment_status) for c in assigned.changed] == [
        ("INV-05", "paid"), ("INV-06", "partially_paid")]
    assert await list_unmatched(conn) == []
    assert any(
        r.action == "unmatched.assign" and r.target == "unmatched:stripe/p9"
        for r in await list_audit(conn, customer_id="c1")
    )

    # Replays and resends now all see one applied payment.
    assert (
        await assign_unmatched(
            conn, assignment("stripe", "p9", "c1", at("2024-07-03T00:00")), token="assign-1"
        )
        == assigned
    )
    again = await assign_unmatched(conn, assignment("stripe", "p9", "c1", at("2024-07-04T00:00")))
    assert (again.status, again.changed, again.balance) == ("already_assigned", [], 500)
    resend = await record_unmatched(conn, _unmatched())
    assert resend.status == "duplicate" and resend.payment is not None


async def test_assignment_refuses_another_currency(conn: psycopg.AsyncConnection) -> None:
    await setup_customer(conn, currency="EUR")
    await record_unmatched(conn, _unmatched())
    before = await snapshot(conn)
    with pytest.raises(InvalidPayment, match="currency USD does not match currency EUR"):
        await assign_unmatched(conn, assignment("stripe", "p9", "c1", at("2024-07-03T00:00")))
    assert await snapshot(conn) == before


async def test_assignment_needs_known_customer_and_payment(conn: psycopg.AsyncConnection) -> None:
    await setup_customer(conn)
    with pytest.raises(UnknownPayment):
        await assign_unmatched(conn, assignment("stripe", "nope", "c1", at("2024-07-03T00:00")))
    with pytest.raises(UnknownCustomer):
        await assign_unmatched(conn, assignment("stripe", "nope", "ghost", at("2024-07-03T00:00")))


async def test_unmatched_id_already_used_by_a_payment(conn: psycopg.AsyncConnection) -> None:
    await setup_customer(conn)
    await pay(conn, "p9", 1500, "2024-07-02T10:00")
    result = await record_unmatched(conn, _unmatched())
    assert result.status == "conflict"
    payment = await get_payment(conn, "stripe", "p9")
    assert result.payment == payment
    assert payment is not None and payment.body_hash != sha("x")
