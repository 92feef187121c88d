"""The past-due chain and working time of a class in the database (SPEC 2.9, 2.10):
stored as given, audited like every class change, refused by the domain's invariants and,
should anything bypass them, by the schema's checks."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta

import psycopg
import pytest
from psycopg import errors

from db.audit import list_audit
from db.classes import ClassSpec, class_spec, get_class, policy_of, upsert_class
from db.errors import InvalidValue
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
