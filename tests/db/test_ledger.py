"""The money transactions of db/ledger/transactions.py against real PostgreSQL."""

from __future__ import annotations

import dataclasses

import psycopg
import pytest
from psycopg.rows import dict_row

from db.audit import list_audit
from db.classes import class_spec, get_class, upsert_class
from db.collection.invoice_rows import list_allocations, list_invoices
from db.collection.service_events import list_service_events
from db.customers import get_customer
from db.errors import InvalidValue, TokenReused, UnknownCustomer, UnknownPayment
from db.ledger.payments import get_payment
from db.ledger.transactions import (
    evaluate_service,
    issue_invoice,
    reevaluate,
    reverse_payment,
)
from domain.ledger.effects import InvoiceFacts
from tests.db.conftest import (
    ACTOR,
    ADMIN,
    at,
    invoice,
    pay,
    reach_suspension,
    reevaluation,
    reversal,
    service_check,
    setup_customer,
    snapshot,
)


async def _two_invoices(conn: psycopg.AsyncConnection) -> None:
    await setup_customer(conn, threshold=1000)
    await issue_invoice(conn, invoice("INV-05", 1000, "2024-05-01T00:00", "2024-05-31"))
    await issue_invoice(conn, invoice("INV-06", 1000, "2024-06-01T00:00", "2024-06-30"))


async def _rows(conn: psycopg.AsyncConnection, table: str) -> list[dict]:
    """A table's rows without bookkeeping timestamps, for 'exactly as before' checks."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            psycopg.sql.SQL("SELECT * FROM {} ORDER BY 1, 2").format(psycopg.sql.Identifier(table))
        )
        return [{k: v for k, v in row.items() if k != "updated_at"} for row in await cur.fetchall()]


# ------------------------------------------------------------------------------- invoices
async def test_same_invoice_again_exists_and_other_data_conflicts(
    conn: psycopg.AsyncConnection,
) -> None:
    await setup_customer(conn)
    first = await issue_invoice(conn, invoice("INV-1", 1000, "2024-05-01T00:00", "2024-05-31"))
    before = await snapshot(conn)

    again = await issue_invoice(conn, invoice("INV-1", 1000, "2024-05-01T00:00", "2024-05-31"))
    assert again.status == "exists"
    assert again.invoice == first.invoice
    assert again.conflict_fields == []

    other = await issue_invoice(conn, invoice("INV-1", 1200, "2024-05-01T00:00", "2024-06-01"))
    assert other.status == "conflict"
    assert other.conflict_fields == ["new_charges", "due_text", "overdue_at", "suspend_at"]
    assert other.invoice == first.invoice
    assert await snapshot(conn) == before


async def test_invoice_for_unknown_customer_is_refused(conn: psycopg.AsyncConnection) -> None:
    await setup_customer(conn)
    with pytest.raises(UnknownCustomer, match="unknown customer 'ghost'"):
        await issue_invoice(conn, invoice("I", 1, "2024-05-01T00:00", "2024-05-31", "ghost"))


async def test_invoice_by_hand_is_audited(conn: psycopg.AsyncConnection) -> None:
    await setup_customer(conn)
    await issue_invoice(conn, invoice("INV-1", 1000, "2024-05-01T00:00", "2024-05-31", actor=ACTOR))
    [record] = [r for r in await list_audit(conn, customer_id="c1") if r.action == "invoice.issue"]
    assert (record.actor, record.realm, record.target) == ("alice", "admin", "invoice:c1/INV-1")
    assert record.after["amount_due"] == 1000
    assert (record.reason, record.request_id) == ("test", "req-1")


async def test_naive_instants_are_refused(conn: psycopg.AsyncConnection) -> None:
    await setup_customer(conn)
    cmd = invoice("INV-1", 1000, "2024-05-01T00:00", "2024-05-31")
    with pytest.raises(InvalidValue, match="timezone-aware"):
        await issue_invoice(
            conn, dataclasses.replace(cmd, issued_at=cmd.issued_at.replace(tzinfo=None))
        )


# ------------------------------------------------------------------------------- payments
async def test_same_payment_again_is_a_duplicate_and_changes_nothing(
    conn: psycopg.AsyncConnection,
) -> None:
    await _two_invoices(conn)
    first = await pay(conn, "p1", 700, "2024-06-10T00:00")
    assert first.status == "accepted"
    before = await snapshot(conn)

    second = await pay(conn, "p1", 700, "2024-06-10T00:00")
    assert second.status == "duplicate"
    assert (second.changed, second.transition, second.allocations) == ([], None, [])
    assert (second.balance, second.service_state) == (first.balance, first.service_state)
    assert await snapshot(conn) == before


async def test_same_payment_id_with_another_body_conflicts(conn: psycopg.AsyncConnection) -> None:
    await _two_invoices(conn)
    await pay(conn, "p1", 700, "2024-06-10T00:00")
    before = await snapshot(conn)
    other = await pay(conn, "p1", 900, "2024-06-10T00:00")
    assert other.status == "conflict"
    stored = await get_payment(conn, "stripe", "p1")
    assert stored is not None and stored.amount == 700
    assert await snapshot(conn) == before


async def test_payment_in_another_currency_is_refused(conn: psycopg.AsyncConnection) -> None:
    await _two_invoices(conn)
    before = await snapshot(conn)
    # Checked in Python once, by ApplyPayment.build; the ledger's guard is the schema's.
    with pytest.raises(
        psycopg.errors.CheckViolation,
        match="payment currency EUR does not match the customer's class currency USD",
    ):
        await pay(conn, "p1", 700, "2024-06-10T00:00", currency="EUR", token="tok")
    assert await snapshot(conn) == before


async def test_payment_for_unknown_customer_is_refused(conn: psycopg.AsyncConnection) -> None:
    await _two_invoices(conn)
    with pytest.raises(UnknownCustomer):
        await pay(conn, "p1", 700, "2024-06-10T00:00", "ghost")


async def test_zero_payment_is_refused(conn: psycopg.AsyncConnection) -> None:
    await _two_invoices(conn)
    with pytest.raises(psycopg.errors.CheckViolation, match="payments_amount_positive"):
        await pay(conn, "p1", 0, "2024-06-10T00:00")


async def test_overpayment_becomes_credit_for_the_next_invoice(
    conn: psycopg.AsyncConnection,
) -> None:
    await setup_customer(conn, threshold=0)
    await issue_invoice(conn, invoice("INV-1", 1000, "2024-05-01T00:00", "2024-05-31"))
    over = await pay(conn, "p1", 1500, "2024-05-10T00:00")
    assert (over.balance, over.credit) == (-500, 500)
    assert [(a.invoice_number, a.amount) for a in over.allocations] == [("INV-1", 1000)]

    nxt = await issue_invoice(conn, invoice("INV-2", 800, "2024-06-01T00:00", "2024-06-30"))
    assert (nxt.invoice.previous_balance, nxt.invoice.amount_due) == (-500, 300)
    [row] = [i for i in await list_invoices(conn, "c1") if i.number == "INV-2"]
    assert (row.previous_balance, row.amount_due, row.open_amount, row.remaining, row.received) == (
        -500,
        300,
        300,
        300,
        500,
    )
    assert (row.collection_status, row.payment_status) == ("collect", "partially_paid")
    assert (nxt.invoice.collection_status, nxt.invoice.payment_status) == (
        "collect", "partially_paid")
    assert nxt.balance == 300
    customer = await get_customer(conn, "c1")
    assert customer is not None and customer.credit == 0
    assert [
        (a.invoice_number, a.payment_id, a.amount) for a in await list_allocations(conn, "c1")
    ] == [("INV-1", "p1", 1000), ("INV-2", "p1", 500)]


# ------------------------------------------------------------------------------- reversal
async def test_reversal_restores_the_exact_previous_rows(conn: psycopg.AsyncConnection) -> None:
    await _two_invoices(conn)
    await pay(conn, "p1", 300, "2024-06-05T00:00")
    invoices, allocations = await _rows(conn, "invoices"), await _rows(conn, "allocations")
    customers = await _rows(conn, "customers")

    paid = await pay(conn, "p2", 2500, "2024-06-10T00:00")
    assert paid.credit == 800
    reversed_ = await reverse_payment(
        conn, reversal("stripe", "p2", at("2024-06-20T00:00"), reason="chargeback", actor=ACTOR)
    )
    assert reversed_.status == "reversed"
    row = await get_payment(conn, "stripe", "p2")
    assert row is not None and row.status == "reversed"
    assert row.reversed_at == at("2024-06-20T00:00")
    assert reversed_.changed == [
        InvoiceFacts("INV-05", 700, "do_not_collect", "partially_paid", False),
        InvoiceFacts("INV-06", 1700, "collect", "unpaid", False),
    ]
    assert await _rows(conn, "invoices") == invoices
    assert await _rows(conn, "allocations") == allocations
    assert await _rows(conn, "customers") == customers

    [record] = [
        r for r in await list_audit(conn, customer_id="c1") if r.action == "payment.reverse"
    ]
    assert (record.before["status"], record.after["status"]) == ("applied", "reversed")
    assert record.reason == "test"  # the actor's reason wins over the command's


async def test_reversing_twice_is_a_no_op(conn: psycopg.AsyncConnection) -> None:
    await _two_invoices(conn)
    await pay(conn, "p1", 300, "2024-06-05T00:00")
    await reverse_payment(conn, reversal("stripe", "p1", at("2024-06-06T00:00")))
    before = await snapshot(conn)
    again = await reverse_payment(conn, reversal("stripe", "p1", at("2024-06-07T00:00")))
    assert again.status == "already_reversed"
    assert (again.changed, again.transition) == ([], None)
    row = await get_payment(conn, "stripe", "p1")
    assert row is not None and row.reversed_at == at("2024-06-06T00:00")
    assert await snapshot(conn) == before


async def test_reversing_an_unknown_payment_is_refused(conn: psycopg.AsyncConnection) -> None:
    await _two_invoices(conn)
    with pytest.raises(UnknownPayment, match="unknown payment 'nope' of processor 'stripe'"):
        await reverse_payment(conn, reversal("stripe", "nope", at("2024-06-06T00:00")))


async def test_reversal_after_suspension_time_suspends_again(
    conn: psycopg.AsyncConnection,
) -> None:
    await _two_invoices(conn)
    await reach_suspension(conn, "INV-06", "2024-07-01T00:00")
    await evaluate_service(conn, service_check("c1", at("2024-07-01T00:00"), "S reached"))
    resumed = await pay(conn, "p1", 2000, "2024-07-02T00:00")
    assert resumed.service_state == "active"
    back = await reverse_payment(
        conn, reversal("stripe", "p1", at("2024-07-03T00:00"), reason="chargeback")
    )
    assert back.transition is not None
    assert (back.transition.state, back.transition.causes) == ("suspended", ["INV-06"])
    assert (back.service_before, back.service_state) == ("active", "suspended")
    event = (await list_service_events(conn, "c1"))[-1]
    assert event.id == back.transition.event_id
    assert event.reason == "payment stripe/p1 reversed: chargeback"


# ------------------------------------------------------------------------ tokens (retries)
async def test_token_replay_returns_the_first_result(conn: psycopg.AsyncConnection) -> None:
    await _two_invoices(conn)
    await reach_suspension(conn, "INV-06", "2024-07-01T00:00")
    await evaluate_service(conn, service_check("c1", at("2024-07-01T00:00"), "S reached"))
    first = await pay(conn, "p1", 1500, "2024-07-02T00:00", token="run:1")
    assert first.status == "accepted" and first.transition is not None
    before = await snapshot(conn)

    retry = await pay(conn, "p1", 1500, "2024-07-02T00:00", token="run:1")
    assert retry == first  # "accepted" (not "duplicate") and the same service transition
    assert await snapshot(conn) == before

    plain = await pay(conn, "p1", 1500, "2024-07-02T00:00")
    assert plain.status == "duplicate"

    with pytest.raises(TokenReused):
        await reverse_payment(conn, reversal("stripe", "p1", at("2024-07-03T00:00")), token="run:1")


async def test_every_operation_replays_its_token(conn: psycopg.AsyncConnection) -> None:
    await setup_customer(conn)
    issued = await issue_invoice(
        conn, invoice("INV-1", 2000, "2024-05-01T00:00", "2024-05-31"), token="t-issue"
    )
    assert (
        await issue_invoice(
            conn, invoice("INV-1", 2000, "2024-05-01T00:00", "2024-05-31"), token="t-issue"
        )
        == issued
    )
    await reach_suspension(conn, "INV-1", "2024-06-01T00:00")
    service = await evaluate_service(
        conn, service_check("c1", at("2024-06-02T00:00"), "S"), token="t-svc"
    )
    assert service.transition is not None
    assert (
        await evaluate_service(
            conn, service_check("c1", at("2024-06-02T00:00"), "S"), token="t-svc"
        )
        == service
    )
    await pay(conn, "p1", 500, "2024-06-03T00:00")
    rev = await reverse_payment(
        conn, reversal("stripe", "p1", at("2024-06-04T00:00")), token="t-rev"
    )
    assert (
        await reverse_payment(conn, reversal("stripe", "p1", at("2024-06-04T00:00")), token="t-rev")
        == rev
    )
    rerun = await reevaluate(conn, reevaluation("c1", at("2024-06-05T00:00")), token="t-rerun")
    assert (
        await reevaluate(conn, reevaluation("c1", at("2024-06-05T00:00")), token="t-rerun") == rerun
    )


# ------------------------------------------------------------------------------ re-runs
async def test_rerun_after_threshold_change_and_dry_run(conn: psycopg.AsyncConnection) -> None:
    await _two_invoices(conn)
    await pay(conn, "p1", 1500, "2024-06-05T00:00")  # June remaining 500: do_not_collect
    await reach_suspension(conn, "INV-06", "2024-07-01T00:00")
    klass = await get_class(conn, "residential")
    assert klass is not None
    await upsert_class(conn, dataclasses.replace(class_spec(klass), threshold=0), ADMIN)
    before = await snapshot(conn)

    dry = await reevaluate(
        conn, reevaluation("c1", at("2024-07-02T00:00"), dry_run=True, actor=ACTOR), token="dry"
    )
    assert dry.dry_run
    assert dry.changed == [InvoiceFacts("INV-06", 500, "collect", "partially_paid", False)]
    assert [(c.number, c.before_status, c.after_status) for c in dry.changes] == [
        ("INV-06", "do_not_collect", "collect")]
    # The would-be suspension, and no transition: its row was rolled back with the rest.
    assert (dry.service_before, dry.service_after, dry.transition) == (
        "active", "suspended", None)
    assert await snapshot(conn) == before

    real = await reevaluate(conn, reevaluation("c1", at("2024-07-02T00:00"), actor=ACTOR))
    assert (real.changes, real.changed) == (dry.changes, dry.changed)
    assert real.transition is not None
    assert (real.transition.state, real.transition.causes) == ("suspended", ["INV-06"])
    [june] = [i for i in await list_invoices(conn, "c1") if i.number == "INV-06"]
    assert june.collection_status == "collect"
    assert any(r.action == "customer.rerun" for r in await list_audit(conn, customer_id="c1"))

    again = await reevaluate(conn, reevaluation("c1", at("2024-07-02T00:00")))
    assert (again.changes, again.changed, again.transition) == ([], [], None)


async def test_back_dated_invoice_re_evaluates_the_newer_ones(
    conn: psycopg.AsyncConnection,
) -> None:
    await setup_customer(conn, threshold=1000)
    await issue_invoice(conn, invoice("INV-06", 1000, "2024-06-01T00:00", "2024-06-30"))
    late = await issue_invoice(conn, invoice("INV-05", 1000, "2024-05-01T00:00", "2024-05-31"))
    assert (late.invoice.previous_balance, late.invoice.amount_due) == (0, 1000)
    assert late.changed == [InvoiceFacts("INV-06", 2000, "collect", "unpaid", False)]
    [may, june] = await list_invoices(conn, "c1")
    assert (may.number, june.number, june.previous_balance, june.amount_due) == (
        "INV-05",
        "INV-06",
        1000,
        2000,
    )
