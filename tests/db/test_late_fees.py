"""Late fees in the ledger (SPEC 2.9): charged once per invoice when it drives dunning, part
of the fold from that instant, waived exactly as if never charged, audited."""

from __future__ import annotations

import dataclasses

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import errors

from db.audit import list_audit
from db.classes import ClassSpec, upsert_class
from db.customers import NewCustomer, add_customer
from db.ledger.transactions import charge_late_fee, issue_invoice, waive_late_fee
from domain.ledger.commands import ChargeLateFee, WaiveLateFee
from tests.db.conftest import ACTOR, ADMIN, at, invoice, pay

# The issue's class: threshold 10.00, a 2% fee.
POLICY = ClassSpec(name="EasyCall", currency="BRL", threshold=1000, late_fee_basis_points=200,
                   late_fee_after_seconds=5 * 86400)


async def customer(conn: psycopg.AsyncConnection, cid: str = "c1",
                   spec: ClassSpec = POLICY) -> None:
    await upsert_class(conn, spec, ADMIN)
    await add_customer(conn, NewCustomer(cid, "Ana", f"{cid}@example.com", spec.name), ADMIN)


def charge(number: str, when: str, cid: str = "c1") -> ChargeLateFee:
    return ChargeLateFee(cid, number).at(at(when))


def waive(number: str, when: str, cid: str = "c1") -> WaiveLateFee:
    return WaiveLateFee(cid, number, actor=ACTOR).at(at(when))


async def ledger_state(conn: psycopg.AsyncConnection, cid: str) -> dict[str, list[tuple]]:
    """What the fold stores for a customer: invoice figures, allocations, balance."""
    queries = {
        "invoices": "SELECT number, previous_balance, amount_due, open_amount, remaining,"
                    " received, collection_status, payment_status, fees FROM invoices"
                    " WHERE customer_id = %s ORDER BY issued_at, number",
        "allocations": "SELECT p.payment_id, i.number, a.amount FROM allocations a"
                       " JOIN payments p ON p.id = a.payment_row_id"
                       " JOIN invoices i ON i.id = a.invoice_id WHERE a.customer_id = %s"
                       " ORDER BY 1, 2",
        "customer": "SELECT balance, credit FROM customers WHERE id = %s",
    }
    return {name: await (await conn.execute(q, (cid,))).fetchall()
            for name, q in queries.items()}


async def test_the_issues_fee_payment_and_waiver(conn: psycopg.AsyncConnection) -> None:
    await customer(conn)
    await issue_invoice(conn, invoice("INV-06", 2000, "2026-06-01T00:00", "2026-06-04"))
    charged = await charge_late_fee(conn, charge("INV-06", "2026-06-10T00:00"))
    assert (charged.status, charged.amount, charged.balance) == ("charged", 40, 2040)
    assert [(c.number, c.remaining, c.collection_status) for c in charged.changed] == [
        ("INV-06", 2040, "collect")]  # its workflow is told
    state = await ledger_state(conn, "c1")
    assert state["invoices"] == [("INV-06", 0, 2000, 2040, 2040, 0, "collect", "unpaid", 40)]
    # A payment of 10.40 leaves 10.00: do_not_collect (10 does not exceed 10).
    paid = await pay(conn, "p-1040", 1040, "2026-06-11T00:00", currency="BRL")
    assert paid.status == "accepted"
    state = await ledger_state(conn, "c1")
    assert state["invoices"] == [("INV-06", 0, 2000, 1000, 1000, 1040, "do_not_collect",
                                  "partially_paid", 40)]
    # Charged once: again, even after a waiver, is "already_charged".
    again = await charge_late_fee(conn, charge("INV-06", "2026-06-12T00:00"))
    assert (again.status, again.amount) == ("already_charged", 40)
    waived = await waive_late_fee(conn, waive("INV-06", "2026-06-12T00:00"))
    assert (waived.status, waived.amount, waived.balance) == ("waived", 40, 960)
    assert (await waive_late_fee(conn, waive("INV-06", "2026-06-13T00:00"))).status == \
        "already_waived"
    assert (await charge_late_fee(conn, charge("INV-06", "2026-06-13T00:00"))).status == \
        "already_charged"
    records = await list_audit(conn, target="invoice:c1/INV-06")
    assert [r.action for r in records][0] == "fee.waive"
    assert records[0].before == {"fee": 40, "remaining": 1000}
    assert records[0].after == {"fee": 0, "remaining": 960}


async def test_no_fee_when_the_invoice_does_not_drive_dunning(
        conn: psycopg.AsyncConnection) -> None:
    await customer(conn)
    await issue_invoice(conn, invoice("MAY", 1000, "2026-05-01T00:00", "2026-05-31"))
    outcome = await charge_late_fee(conn, charge("MAY", "2026-06-06T00:00"))
    assert (outcome.status, outcome.amount) == ("not_due", 0)
    assert "do_not_collect" in outcome.reason
    none = dataclasses.replace(POLICY, name="NoFee", late_fee_basis_points=None)
    await customer(conn, "c2", none)
    await issue_invoice(conn, invoice("A", 5000, "2026-05-01T00:00", "2026-05-31", "c2"))
    assert (await charge_late_fee(conn, charge("A", "2026-06-06T00:00", "c2"))).reason == \
        "the class has no late fee"
    assert await (await conn.execute("SELECT count(*) FROM late_fees")).fetchone() == (0,)


async def test_a_retried_charge_is_answered_from_its_token(conn: psycopg.AsyncConnection) -> None:
    await customer(conn)
    await issue_invoice(conn, invoice("INV-06", 2000, "2026-06-01T00:00", "2026-06-04"))
    first = await charge_late_fee(conn, charge("INV-06", "2026-06-10T00:00"), token="t-1")
    retried = await charge_late_fee(conn, charge("INV-06", "2026-06-10T00:00"), token="t-1")
    assert first == retried and first.status == "charged"


async def test_the_schema_keeps_one_fee_per_invoice_and_never_forgets_it(
        conn: psycopg.AsyncConnection) -> None:
    await customer(conn)
    await issue_invoice(conn, invoice("INV-06", 2000, "2026-06-01T00:00", "2026-06-04"))
    await charge_late_fee(conn, charge("INV-06", "2026-06-10T00:00"))
    statements = [
        "INSERT INTO late_fees (customer_id, invoice_id, amount, charged_at)"
        " SELECT customer_id, invoice_id, 10, charged_at FROM late_fees",
        "DELETE FROM late_fees",
        "UPDATE late_fees SET amount = 1",
        "UPDATE late_fees SET waived_at = NULL",
    ]
    for statement in statements:
        with pytest.raises((errors.UniqueViolation, errors.CheckViolation)):
            async with conn.transaction():
                await conn.execute(statement)
    await waive_late_fee(conn, waive("INV-06", "2026-06-11T00:00"))
    with pytest.raises(errors.CheckViolation):
        async with conn.transaction():
            await conn.execute("UPDATE late_fees SET waived_at = now()")


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["pay", "charge", "waive"]), st.integers(1, 3000)),
                max_size=6))
async def test_charging_then_waiving_leaves_the_ledger_as_never_charged(
        database_url: str, steps: list[tuple[str, int]]) -> None:
    """Two customers get the same invoices and payments; one is also charged fees on both
    invoices (at any point) and every fee is waived at the end. Their ledgers are equal."""
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        await conn.execute("TRUNCATE late_fees, allocations, payments, invoices, service_events,"
                           " customer_operations, customers, customer_classes CASCADE")
        spec = dataclasses.replace(POLICY, threshold=0)
        await customer(conn, "fee", spec)
        await add_customer(conn, NewCustomer("never", "Bo", "bo@example.com", spec.name), ADMIN)
        for cid in ("fee", "never"):
            await issue_invoice(conn, invoice("A", 1500, "2026-05-01T00:00", "2026-05-31", cid))
            await issue_invoice(conn, invoice("B", 2500, "2026-06-01T00:00", "2026-06-30", cid))
        for n, (kind, amount) in enumerate(steps):
            when = f"2026-07-{n + 1:02d}T00:00"
            if kind == "pay":
                for cid in ("fee", "never"):
                    await pay(conn, f"p{n}", amount, when, cid, currency="BRL", processor=cid)
            elif kind == "charge":
                for number in ("A", "B"):
                    await charge_late_fee(conn, charge(number, when, "fee"))
            else:
                await waive_late_fee(conn, waive("A" if amount % 2 else "B", when, "fee"))
        for number in ("A", "B"):
            await waive_late_fee(conn, waive(number, "2026-07-31T00:00", "fee"))
        assert await ledger_state(conn, "fee") == await ledger_state(conn, "never")
