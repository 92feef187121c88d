"""SPEC 5, at database level, with exact figures."""

from __future__ import annotations

import psycopg

from db.collection.service_events import list_service_events
from db.collection.status import customer_status
from db.ledger.transactions import evaluate_service, issue_invoice
from domain.ledger.effects import InvoiceFacts
from tests.db.conftest import at, invoice, pay, reach_suspension, service_check, setup_customer


async def test_worked_example(conn: psycopg.AsyncConnection) -> None:
    await setup_customer(conn, threshold=1000)  # $10.00

    may = await issue_invoice(conn, invoice("INV-05", 1000, "2024-05-01T00:00", "2024-05-31"))
    assert may.status == "created"
    assert (may.invoice.amount_due, may.invoice.remaining) == (1000, 1000)
    assert may.invoice.collection_status == "do_not_collect"  # 10 does not exceed 10
    assert may.invoice.payment_status == "unpaid"

    june = await issue_invoice(conn, invoice("INV-06", 1000, "2024-06-01T00:00", "2024-06-30"))
    assert (june.invoice.previous_balance, june.invoice.amount_due) == (1000, 2000)
    assert june.invoice.collection_status == "collect"
    assert june.invoice.suspend_at == at("2024-07-01T00:00")
    assert june.balance == 2000

    # Before S nothing happens; at S the service is suspended because of June only.
    early = await evaluate_service(conn, service_check("c1", at("2024-06-30T23:59"), "tick"))
    assert (early.service_state, early.transition) == ("active", None)
    await reach_suspension(conn, "INV-05", "2024-06-01T00:00")  # do_not_collect: no cause
    await reach_suspension(conn, "INV-06", "2024-07-01T00:00")
    suspended = await evaluate_service(
        conn, service_check("c1", at("2024-07-01T00:00"), "invoice INV-06 reached S")
    )
    assert suspended.service_state == "suspended"
    assert suspended.transition is not None
    assert suspended.transition.causes == ["INV-06"]
    assert suspended.service_before == "active"

    paid = await pay(conn, "pay-15", 1500, "2024-07-02T10:00")
    assert paid.status == "accepted"
    assert [(a.invoice_number, a.amount) for a in paid.allocations] == [
        ("INV-05", 1000),
        ("INV-06", 500),
    ]
    assert paid.changed == [
        InvoiceFacts("INV-05", 0, "do_not_collect", "paid", True),
        InvoiceFacts("INV-06", 500, "do_not_collect", "partially_paid", False),
    ]
    assert paid.transition is not None
    assert (paid.transition.state, paid.service_before) == ("active", "suspended")
    assert paid.transition.causes == []
    assert (paid.service_state, paid.balance, paid.credit) == ("active", 500, 0)

    events = await list_service_events(conn, "c1")
    assert [(e.state, e.causes, e.occurred_at) for e in events] == [
        ("suspended", ("INV-06",), at("2024-07-01T00:00")),
        ("active", (), at("2024-07-02T10:00")),
    ]
    assert events[0].reason == "invoice INV-06 reached S"
    assert events[1].reason == "payment stripe/pay-15 applied"
    assert [e.id for e in events] == [suspended.transition.event_id, paid.transition.event_id]

    document = await customer_status(conn, "c1", at("2024-07-02T10:00"))
    assert document == {
        "customer_id": "c1",
        "class": "residential",
        "currency": "USD",
        "service_state": "active",
        "balance": "5.00",
        "hold": None,
        "invoices": [
            {
                "number": "INV-05",
                "issued_at": "2024-05-01T00:00:00+00:00",
                "due_date": "2024-05-31",
                "amount_due": "10.00",
                "remaining": "0.00",
                "collection_status": "do_not_collect",
                "payment_status": "paid",
                "overdue": False,
                "suspension_at": "2024-06-01T00:00:00+00:00",
                "suspension_moved": None,  # a class working all day, every day
                "late_fee": None,
            },
            {
                "number": "INV-06",
                "issued_at": "2024-06-01T00:00:00+00:00",
                "due_date": "2024-06-30",
                "amount_due": "20.00",
                "remaining": "5.00",
                "collection_status": "do_not_collect",
                "payment_status": "partially_paid",
                "overdue": True,
                "suspension_at": "2024-07-01T00:00:00+00:00",
                "suspension_moved": None,
                "late_fee": None,
            },
        ],
    }
