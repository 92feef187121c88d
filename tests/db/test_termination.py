"""Termination in the ledger (SPEC 2.9): a customer suspended without a break for its
class's terminate-after becomes ``terminated`` (a service event with its causes); payments
are still applied but never resume it; a hold postpones it; finance's reactivation decides
the service again under SPEC 2.4, audited."""

from __future__ import annotations

from datetime import timedelta

import psycopg

from db.audit import list_audit
from db.classes import ClassSpec, upsert_class
from db.customers import NewCustomer, add_customer
from db.ledger.transactions import (
    evaluate_service,
    issue_invoice,
    place_hold,
    reactivate_customer,
    release_hold,
    terminate_customer,
)
from domain.ledger.commands import (
    PlaceHold,
    ReactivateCustomer,
    ReleaseHold,
    TerminateCustomer,
)
from tests.db.conftest import ACTOR, ADMIN, at, invoice, pay, reach_suspension, service_check

THIRTY = ClassSpec(name="thirty", currency="USD", threshold=1000,
                   terminate_after_seconds=30 * 86400)


async def suspended(conn: psycopg.AsyncConnection, spec: ClassSpec = THIRTY) -> None:
    await upsert_class(conn, spec, ADMIN)
    await add_customer(conn, NewCustomer("c1", "Ana", "ana@example.com", spec.name), ADMIN)
    await issue_invoice(conn, invoice("JUNE", 2000, "2026-06-01T00:00", "2026-06-04"))
    await reach_suspension(conn, "JUNE", "2026-06-05T00:00")
    decided = await evaluate_service(conn, service_check("c1", at("2026-06-05T00:00"), "S"))
    assert decided.transition is not None
    # The suspension carries when it terminates: the customer's workflow's timer.
    assert decided.transition.terminate_at == at("2026-07-05T00:00")


def terminate(when: str) -> TerminateCustomer:
    return TerminateCustomer("c1").at(at(when))


async def test_thirty_days_after_the_suspension_and_final_until_reactivated(
        conn: psycopg.AsyncConnection) -> None:
    await suspended(conn)
    early = await terminate_customer(conn, terminate("2026-07-04T23:59"))
    assert (early.status, early.terminate_at, early.service_state) == (
        "not_due", at("2026-07-05T00:00"), "suspended")
    done = await terminate_customer(conn, terminate("2026-07-05T00:00"))
    assert (done.status, done.service_state, done.service_before) == (
        "terminated", "terminated", "suspended")
    assert done.transition is not None and done.transition.causes == ["JUNE"]
    assert [f.number for f in done.changed] == ["JUNE"]  # its workflow ends
    # Payments are applied, but the service never resumes by itself.
    paid = await pay(conn, "p1", 2000, "2026-07-06T00:00")
    assert (paid.status, paid.service_state, paid.transition) == (
        "accepted", "terminated", None)
    again = await evaluate_service(conn, service_check("c1", at("2026-07-06T00:00"), "S"))
    assert again.service_state == "terminated"
    back = await reactivate_customer(conn, ReactivateCustomer("c1", actor=ACTOR).at(
        at("2026-07-07T00:00")))
    assert (back.status, back.service_state) == ("reactivated", "active")  # paid: 2.4
    assert back.transition is not None and back.transition.state == "active"
    records = [(r.action, r.on_behalf_of) for r in await list_audit(conn, target="customer:c1")]
    assert ("customer.reactivate", "c1") in records
    cur = await conn.execute(
        "SELECT state, reason FROM service_events WHERE customer_id = 'c1' ORDER BY id")
    assert [s for s, _ in await cur.fetchall()] == ["suspended", "terminated", "active"]
    assert (await reactivate_customer(conn, ReactivateCustomer("c1").at(
        at("2026-07-08T00:00")))).status == "not_terminated"


async def test_reactivated_with_an_unpaid_cause_is_suspended_again_at_once(
        conn: psycopg.AsyncConnection) -> None:
    await suspended(conn)
    await terminate_customer(conn, terminate("2026-07-05T00:00"))
    back = await reactivate_customer(conn, ReactivateCustomer("c1", actor=ACTOR).at(
        at("2026-07-07T00:00")))
    assert back.service_state == "suspended"
    assert back.transition is not None
    assert back.transition.terminate_at == at("2026-07-07T00:00") + timedelta(days=30)


async def test_a_hold_postpones_termination_to_its_end(conn: psycopg.AsyncConnection) -> None:
    await suspended(conn)
    await place_hold(conn, PlaceHold("c1", reason="dispute", actor=ACTOR).at(
        at("2026-06-20T00:00")))
    held = await terminate_customer(conn, terminate("2026-07-05T00:00"))
    assert (held.status, held.terminate_at, held.service_state) == (
        "not_due", None, "suspended")
    ended = await release_hold(conn, ReleaseHold("c1", actor=ACTOR).at(
        at("2026-07-10T00:00")))
    assert (ended.status, ended.service_state) == ("released", "terminated")
    assert ended.transition is not None and ended.transition.state == "terminated"


async def test_a_hold_released_before_it_is_due_keeps_the_termination_time(
        conn: psycopg.AsyncConnection) -> None:
    await suspended(conn)
    await place_hold(conn, PlaceHold("c1", reason="dispute", actor=ACTOR).at(
        at("2026-06-20T00:00")))
    ended = await release_hold(conn, ReleaseHold("c1", actor=ACTOR).at(
        at("2026-06-25T00:00")))
    assert (ended.service_state, ended.terminate_at) == ("suspended", at("2026-07-05T00:00"))


async def test_a_class_without_terminate_after_never_terminates(
        conn: psycopg.AsyncConnection) -> None:
    await upsert_class(conn, ClassSpec(name="never", currency="USD", threshold=1000), ADMIN)
    await add_customer(conn, NewCustomer("c1", "Ana", "ana@example.com", "never"), ADMIN)
    await issue_invoice(conn, invoice("JUNE", 2000, "2026-06-01T00:00", "2026-06-04"))
    await reach_suspension(conn, "JUNE", "2026-06-05T00:00")
    decided = await evaluate_service(conn, service_check("c1", at("2026-06-05T00:00"), "S"))
    assert decided.transition is not None and decided.transition.terminate_at is None
    never = await terminate_customer(conn, terminate("2027-06-05T00:00"))
    assert (never.status, never.reason) == ("not_due", "the class never terminates")
