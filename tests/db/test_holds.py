"""Holds in the ledger (SPEC 2.11): stored on the customer, decided by the domain under the
customer's lock: no suspension and no late fee while held, a suspended customer stays
suspended unless resumed (reason "hold"), payments work as usual; releasing or reaching
``until`` decides again at once; audited; the schema's CHECKs mirror the hold's rules."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors

from db.audit import list_audit
from db.classes import ClassSpec, upsert_class
from db.collection.status import customer_status
from db.customers import NewCustomer, add_customer
from db.errors import InvalidValue
from db.ledger.transactions import (
    charge_late_fee,
    evaluate_service,
    issue_invoice,
    place_hold,
    release_hold,
)
from domain.ledger.commands import ChargeLateFee, PlaceHold, ReleaseHold
from tests.db.conftest import ACTOR, ADMIN, at, invoice, pay, reach_suspension, service_check

FEE = ClassSpec(name="held", currency="USD", threshold=1000, late_fee_basis_points=200)


async def suspended_customer(conn: psycopg.AsyncConnection) -> None:
    """c1 with a 20.00 June invoice past S, collect: suspended."""
    await upsert_class(conn, FEE, ADMIN)
    await add_customer(conn, NewCustomer("c1", "Ana", "ana@example.com", FEE.name), ADMIN)
    await issue_invoice(conn, invoice("JUNE", 2000, "2026-06-01T00:00", "2026-06-04"))
    await reach_suspension(conn, "JUNE", "2026-06-05T00:00")
    decided = await evaluate_service(conn, service_check("c1", at("2026-06-05T00:00"), "S"))
    assert decided.service_state == "suspended"


def hold(when: str, *, until: str | None = None, resume: bool = False,
         reason: str = "dispute") -> PlaceHold:
    return PlaceHold("c1", reason=reason, until=at(until) if until else None, resume=resume,
                     actor=ACTOR).at(at(when))


async def reasons(conn: psycopg.AsyncConnection) -> list[tuple[str, str]]:
    cur = await conn.execute(
        "SELECT state, reason FROM service_events WHERE customer_id = 'c1' ORDER BY id")
    return [(str(s), str(r)) for s, r in await cur.fetchall()]


async def test_resume_then_release_the_next_day_suspends_again_at_once(
        conn: psycopg.AsyncConnection) -> None:
    await suspended_customer(conn)
    placed = await place_hold(conn, hold("2026-06-10T12:00", resume=True))
    assert (placed.status, placed.service_before, placed.service_state) == (
        "placed", "suspended", "active")
    assert placed.transition is not None and placed.transition.state == "active"
    assert placed.hold is not None and placed.hold.until is None
    assert placed.hold.reason == "dispute" and placed.hold.actor == "alice"
    # Every open invoice hears of the hold (its steps are held).
    assert [(f.number, f.hold) for f in placed.changed] == [("JUNE", placed.hold)]
    # While held, the cause is still there but the service stays active.
    again = await evaluate_service(conn, service_check("c1", at("2026-06-10T13:00"), "S"))
    assert (again.service_state, again.transition) == ("active", None)
    released = await release_hold(conn, ReleaseHold("c1", actor=ACTOR).at(
        at("2026-06-11T12:00")))
    assert (released.status, released.hold, released.service_state) == (
        "released", None, "suspended")
    assert [f.hold for f in released.changed] == [None]
    assert await reasons(conn) == [("suspended", "S"), ("active", "hold"),
                                   ("suspended", "hold released")]
    actions = [(r.action, r.actor, r.on_behalf_of)
               for r in await list_audit(conn, target="customer:c1")]
    assert ("customer.hold", "alice", "c1") in actions
    assert ("customer.hold_release", "alice", "c1") in actions
    assert (await release_hold(conn, ReleaseHold("c1").at(at("2026-06-12T00:00")))).status \
        == "not_held"


async def test_without_resume_a_suspended_customer_stays_suspended_until_paid(
        conn: psycopg.AsyncConnection) -> None:
    await suspended_customer(conn)
    placed = await place_hold(conn, hold("2026-06-10T12:00", until="2026-06-20T00:00"))
    assert (placed.service_state, placed.transition) == ("suspended", None)
    # Payments work as usual: paying the cause resumes the service (SPEC 2.4).
    paid = await pay(conn, "p1", 2000, "2026-06-11T00:00")
    assert paid.service_state == "active"
    assert [f.hold for f in paid.changed] == [placed.hold]  # the invoice hears of it


async def test_no_suspension_and_no_fee_while_held_and_the_suspension_at_its_end(
        conn: psycopg.AsyncConnection) -> None:
    await upsert_class(conn, FEE, ADMIN)
    await add_customer(conn, NewCustomer("c1", "Ana", "ana@example.com", FEE.name), ADMIN)
    await issue_invoice(conn, invoice("JUNE", 2000, "2026-06-01T00:00", "2026-06-04"))
    await place_hold(conn, hold("2026-06-02T00:00", until="2026-06-20T00:00"))
    fee = await charge_late_fee(conn, ChargeLateFee("c1", "JUNE").at(at("2026-06-05T00:00")))
    assert fee.status == "not_due" and fee.reason.startswith("held: customer on hold until")
    await reach_suspension(conn, "JUNE", "2026-06-05T00:00")
    held = await evaluate_service(conn, service_check("c1", at("2026-06-05T00:00"), "S"))
    assert held.service_state == "active"
    # The workflow's timer for an older until, or one that fires early, ends nothing.
    early = ReleaseHold("c1", expired=True, until=at("2026-06-20T00:00"))
    assert (await release_hold(conn, early.at(at("2026-06-19T00:00")))).status == "not_held"
    other = ReleaseHold("c1", expired=True, until=at("2026-06-15T00:00"))
    assert (await release_hold(conn, other.at(at("2026-06-20T00:00")))).status == "not_held"
    done = await release_hold(conn, early.at(at("2026-06-20T00:00")))
    assert (done.status, done.service_state, done.hold) == ("ended", "suspended", None)
    assert await reasons(conn) == [("suspended", "hold ended")]
    document = await customer_status(conn, "c1", at("2026-06-21T00:00"))
    assert document["hold"] is None


async def test_the_status_document_shows_the_hold(conn: psycopg.AsyncConnection) -> None:
    await suspended_customer(conn)
    await place_hold(conn, hold("2026-06-10T12:00", until="2026-06-20T00:00", resume=True))
    document = await customer_status(conn, "c1", at("2026-06-11T00:00"))
    assert document["hold"] == {"until": "2026-06-20T00:00:00+00:00", "reason": "dispute",
                                "actor": "alice", "placed_at": "2026-06-10T12:00:00+00:00",
                                "resume": True}
    assert document["service_state"] == "active"
    # Placing again replaces the hold in force (and is audited again).
    replaced = await place_hold(conn, hold("2026-06-12T00:00", reason="longer"))
    assert replaced.status == "replaced" and replaced.hold is not None
    assert (replaced.hold.until, replaced.hold.reason) == (None, "longer")


async def test_refusals(conn: psycopg.AsyncConnection) -> None:
    await suspended_customer(conn)
    with pytest.raises(InvalidValue, match="already passed"):
        await place_hold(conn, hold("2026-06-10T12:00", until="2026-06-10T12:00"))
    with pytest.raises(InvalidValue, match="reason"):
        await place_hold(conn, hold("2026-06-10T12:00", reason=" "))


@pytest.mark.parametrize("assignment", [
    "hold_placed_at = now()",  # no reason, actor, resume
    "hold_placed_at = now(), hold_reason = 'x', hold_actor = 'a', hold_resume = false,"
    " hold_until = now() - interval '1 day'",
    "hold_placed_at = now(), hold_reason = ' ', hold_actor = 'a', hold_resume = false",
    "hold_placed_at = now(), hold_reason = 'a' || chr(10) || 'b', hold_actor = 'a',"
    " hold_resume = false",
    "hold_until = now()",  # an until without a hold
])
async def test_the_schema_refuses_a_malformed_hold(conn: psycopg.AsyncConnection,
                                                   assignment: str) -> None:
    await suspended_customer(conn)
    await conn.commit()
    with pytest.raises(errors.CheckViolation):
        await conn.execute(f"UPDATE customers SET {assignment} WHERE id = 'c1'")  # noqa: S608
    await conn.rollback()
