"""The past-due chain and working time of a class in the database (SPEC 2.9, 2.10):
stored as given, audited like every class change, refused by the domain's invariants and,
should anything bypass them, by the schema's checks."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
from psycopg import errors

from db.audit import list_audit
from db.classes import ClassSpec, class_spec, get_class, policy_of, upsert_class
from db.collection.status import customer_status
from db.customers import NewCustomer, add_customer
from db.errors import InvalidValue
from db.ledger.transactions import issue_invoice
from domain.collection.invoicing import issue_command
from domain.collection.policy import LateFee
from tests.db.conftest import ADMIN

SPEC = ClassSpec(name="EasyCall", currency="BRL", threshold=1000, timezone="America/Sao_Paulo",
                 grace_seconds=8 * 86400, late_fee_basis_points=200,
                 late_fee_after_seconds=5 * 86400, terminate_after_seconds=30 * 86400,
                 working_days=(5, 1, 2, 3, 4), working_start_minute=540, working_end_minute=1080,
                 holidays=(date(2026, 12, 25), date(2026, 11, 2)))


async def test_policy_is_stored_read_back_and_audited(conn: psycopg.AsyncConnection) -> None:
    created = await upsert_class(conn, SPEC, ADMIN)
    assert created.status == "created"
    row = await get_class(conn, "EasyCall")
    assert row is not None and class_spec(row) == SPEC
    assert row.working_days == (1, 2, 3, 4, 5)  # a set, stored sorted
    assert row.holidays == (date(2026, 11, 2), date(2026, 12, 25))
    policy = policy_of(row)
    assert policy.late_fee == LateFee(basis_points=200)
    assert policy.late_fee_after == timedelta(days=5)
    assert policy.terminate_after == timedelta(days=30)
    assert (policy.working.start_minute, policy.working.end_minute) == (540, 1080)
    assert policy.schedule.grace == timedelta(days=8)
    # The same policy in another order changes nothing and writes no audit record.
    again = dataclasses.replace(SPEC, working_days=(1, 2, 3, 4, 5),
                                holidays=(date(2026, 12, 25), date(2026, 11, 2)))
    assert (await upsert_class(conn, again, ADMIN)).status == "unchanged"
    fixed = dataclasses.replace(SPEC, late_fee_basis_points=None, late_fee_fixed=500,
                                holidays=())
    assert (await upsert_class(conn, fixed, ADMIN)).status == "updated"
    records = await list_audit(conn, target="class:EasyCall")
    assert [r.action for r in records] == ["class.update", "class.create"]
    assert records[0].before["late_fee_basis_points"] == 200
    assert records[0].after["late_fee_fixed"] == 500
    assert records[0].before["holidays"] == ["2026-11-02", "2026-12-25"]
    assert records[0].after["holidays"] == []


@pytest.mark.parametrize(("change", "message"), [
    ({"late_fee_fixed": 500, "late_fee_basis_points": 200}, "either a fixed amount or a perc"),
    ({"late_fee_basis_points": 0}, "more than 0%"),
    ({"late_fee_basis_points": 10001}, "at most 100%"),
    ({"late_fee_fixed": 0}, "more than 0"),
    ({"terminate_after_seconds": 0}, "terminate-after"),
    ({"working_days": ()}, "at least one day"),
    ({"working_days": (0, 1)}, "ISO weekdays"),
    ({"working_start_minute": 600, "working_end_minute": 540}, "start before they end"),
    ({"working_end_minute": 1441}, "start before they end"),
])
async def test_impossible_policies_are_refused(conn: psycopg.AsyncConnection,
                                               change: dict, message: str) -> None:
    spec = dataclasses.replace(ClassSpec(name="x", currency="USD"), **change)
    with pytest.raises(InvalidValue, match=message):
        await upsert_class(conn, spec, ADMIN)
    assert await get_class(conn, "x") is None


BAD = {
    "fixed and percentage": "late_fee_fixed = 5, late_fee_basis_points = 200",
    "zero fixed fee": "late_fee_fixed = 0",
    "percentage over 100%": "late_fee_basis_points = 10001",
    "negative late-fee-after": "late_fee_after_seconds = -1",
    "zero terminate-after": "terminate_after_seconds = 0",
    "no working day": "working_days = '{}'",
    "weekday 0": "working_days = '{0,1}'",
    "weekday 8": "working_days = '{7,8}'",
    "null weekday": "working_days = '{1,NULL}'",
    "hours end before start": "working_start_minute = 600, working_end_minute = 540",
    "hours past midnight": "working_end_minute = 1500",
    "null holiday": "holidays = '{2026-12-25,NULL}'",
}


@pytest.mark.parametrize("assignment", BAD.values(), ids=BAD.keys())
async def test_schema_checks_mirror_the_invariants(conn: psycopg.AsyncConnection,
                                                   assignment: str) -> None:
    await upsert_class(conn, ClassSpec(name="x", currency="USD"), ADMIN)
    with pytest.raises(errors.CheckViolation):
        await conn.execute(f"UPDATE customer_classes SET {assignment} WHERE name = 'x'")


async def test_a_moved_suspension_is_stored_with_s_and_why(conn: psycopg.AsyncConnection) -> None:
    """issue_command with the issue's policy: S' in suspend_at, S and why beside it, shown
    by the status document; the schema keeps the two together and S' after S."""
    await upsert_class(conn, SPEC, ADMIN)
    await add_customer(conn, NewCustomer("c1", "Ana", "ana@example.com", "EasyCall"), ADMIN)
    row = await get_class(conn, "EasyCall")
    assert row is not None
    command = issue_command(customer_id="c1", number="INV-06", charges="20.00",
                            currency_code="BRL", issued="2026-06-01", due="2026-06-04",
                            policy=policy_of(row))
    assert command.overdue_at == datetime(2026, 6, 5, 3, tzinfo=UTC)  # D, not moved
    assert command.suspend_at == datetime(2026, 6, 15, 12, tzinfo=UTC)  # Monday 09:00 local
    assert command.suspension_moved_from == datetime(2026, 6, 13, 3, tzinfo=UTC)
    assert (await issue_invoice(conn, command)).status == "created"
    status = await customer_status(conn, "c1", datetime(2026, 6, 2, tzinfo=UTC))
    shown = status["invoices"][0]
    assert shown["suspension_at"] == "2026-06-15T12:00:00+00:00"
    assert shown["suspension_moved"] == {
        "from": "2026-06-13T03:00:00+00:00",
        "why": "S Saturday 2026-06-13 00:00 is outside working days mon-fri; moved to the "
               "next start of working time, Monday 2026-06-15 09:00"}
    for assignment in ("suspension_moved_why = NULL",
                       "suspension_moved_from = suspend_at + interval '1 day'",
                       "suspension_moved_why = ' '"):
        with pytest.raises(errors.CheckViolation):
            async with conn.transaction():
                await conn.execute(f"UPDATE invoices SET {assignment}")


async def test_an_unmoved_suspension_stores_nothing_beside_it(
        conn: psycopg.AsyncConnection) -> None:
    await upsert_class(conn, SPEC, ADMIN)
    await add_customer(conn, NewCustomer("c1", "Ana", "ana@example.com", "EasyCall"), ADMIN)
    row = await get_class(conn, "EasyCall")
    assert row is not None
    # Due at an instant in working hours (Tuesday 10:00): S, 8 days later, is Wednesday
    # 10:00, working time, and stays.
    command = issue_command(customer_id="c1", number="INV-07", charges="20.00",
                            currency_code="BRL", issued="2026-06-01",
                            due="2026-06-02T10:00:00-03:00", policy=policy_of(row))
    assert command.suspend_at == datetime(2026, 6, 10, 13, tzinfo=UTC)  # Wednesday 10:00
    assert command.suspension_moved_from is None and command.suspension_moved_why is None
    assert (await issue_invoice(conn, command)).status == "created"
    rows = await (await conn.execute(
        "SELECT suspension_moved_from, suspension_moved_why FROM invoices")).fetchall()
    assert rows == [(None, None)]
