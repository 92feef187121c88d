"""Holds in the workflows (SPEC 2.11), activities replaced, real dev server (time
skipping): an invoice whose customer is on hold sends no reminder, overdue or warning
mail, records its suspension time all the same and its query says why each step is held;
the customer's workflow places and releases a hold by update, tells every open invoice,
and ends a hold with an ``until`` by its own timer (then decides the service again)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from temporalio import activity

from client import customers
from domain import ids
from domain.hold import Hold
from tests.support.workers import workers
from tests.workflows.fakes import (
    EffectActivities,
    StubInvoiceWorkflow,
    commands_in_history,
    eventually,
)
from tests.workflows.test_invoice_logic import (
    COLLECT,
    PAID,
    FakeActivities,
    fresh_queue,
    start,
    until_idle,
    workflow_input,
)
from tests.workflows.test_ledger_effects import JUNE_COLLECT, start_stub
from workflows.collection.invoice import InvoiceWorkflow
from workflows.collection.payloads import InvoiceReevaluatedSignal
from workflows.ledger.customer import CustomerWorkflow
from workflows.ledger.payloads import (
    PLACE_HOLD,
    RELEASE_HOLD,
    HoldOutcome,
    PlaceHold,
    ReleaseHold,
    ServiceTransition,
)
from workflows.notifications.payloads import SEND_NOTIFICATION

HOLD = Hold(placed_at=datetime(2026, 1, 1, tzinfo=UTC), until=None, reason="dispute",
            actor="ana")


async def test_a_held_invoice_sends_no_dunning_mail_and_says_why(temporal_env) -> None:
    client = temporal_env.client
    fake = FakeActivities(replace(COLLECT, hold=HOLD))
    queue = fresh_queue()
    d = datetime.now(UTC).replace(microsecond=0) + timedelta(days=4)
    async with workers(client, task_queue=queue, workflows=[InvoiceWorkflow],
                      activities=[fake.check_invoice, fake.reach_suspension,
                                  fake.send_notification]):
        handle = await start(client, queue, workflow_input(
            f"c-{uuid.uuid4().hex[:8]}", d, replace(COLLECT, hold=HOLD)))
        await until_idle(handle)
        status = await handle.query(InvoiceWorkflow.status)
        fake.facts = PAID
        await handle.signal(InvoiceWorkflow.reevaluated, InvoiceReevaluatedSignal(PAID))
        await asyncio.wait_for(handle.result(), 20)
    assert fake.kinds() == ["invoice_issued"]  # an event mail goes at once
    held = f"held: {HOLD.describe()}"
    assert {k: v for k, v in status.steps.items() if k != "suspension"} == {
        k: held for k in status.steps if k != "suspension"}
    assert status.steps["suspension"] == f"reached, {held}"
    assert len(fake.suspension_reached) == 1  # recorded: the hold's end may suspend at once
    assert status.hold == HOLD.describe()


async def test_a_hold_signalled_midway_holds_the_next_steps_only(temporal_env) -> None:
    client = temporal_env.client
    fake = FakeActivities(COLLECT)
    queue = fresh_queue()
    d = datetime.now(UTC).replace(microsecond=0) + timedelta(days=4)
    async with workers(client, task_queue=queue, workflows=[InvoiceWorkflow],
                      activities=[fake.check_invoice, fake.reach_suspension,
                                  fake.send_notification]):
        handle = await start(client, queue, workflow_input(
            f"c-{uuid.uuid4().hex[:8]}", d, COLLECT))
        held = replace(COLLECT, hold=HOLD)
        fake.facts = held
        await handle.signal(InvoiceWorkflow.reevaluated, InvoiceReevaluatedSignal(held))
        await until_idle(handle)
        status = await handle.query(InvoiceWorkflow.status)
        await handle.terminate()
    assert status.hold == HOLD.describe()


@dataclass
class HoldLedger(EffectActivities):
    commands: list = field(default_factory=list)
    resumed: ServiceTransition | None = None
    suspended: ServiceTransition | None = None

    @activity.defn(name=PLACE_HOLD)
    async def place_hold(self, command: PlaceHold) -> HoldOutcome:
        self.commands.append(command)
        assert command.now is not None
        hold = Hold(placed_at=command.now, until=command.until, reason=command.reason,
                    actor="ana", resume=command.resume)
        return HoldOutcome(status="placed", hold=hold, service_state="active",
                           service_before="suspended", balance=2000,
                           changed=[replace(JUNE_COLLECT, hold=hold)],
                           transition=self.resumed)

    @activity.defn(name=RELEASE_HOLD)
    async def release_hold(self, command: ReleaseHold) -> HoldOutcome:
        self.commands.append(command)
        return HoldOutcome(status="ended" if command.expired else "released", hold=None,
                           service_state="suspended", service_before="active",
                           balance=2000, changed=[JUNE_COLLECT], transition=self.suspended)


async def test_the_customers_timer_ends_a_hold_at_its_until_and_suspends_at_once(
        temporal_env) -> None:
    client = temporal_env.client
    queue, customer_id = f"holds-{uuid.uuid4().hex[:10]}", f"c-{uuid.uuid4().hex[:8]}"
    fake = HoldLedger(resumed=ServiceTransition("active", ["JUNE"], 21),
                      suspended=ServiceTransition("suspended", ["JUNE"], 22))
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    async with workers(client, task_queue=queue,
                      workflows=[CustomerWorkflow, StubInvoiceWorkflow],
                      activities=[fake.place_hold, fake.release_hold, *fake.effects()]):
        june = await start_stub(client, queue, customer_id, "JUNE")
        answer = await customers.place_hold(client, queue, PlaceHold(
            customer_id, reason="dispute", until=until, resume=True), delivery="d-1")
        assert answer.hold is not None and answer.hold.until == until
        handle = client.get_workflow_handle(ids.customer_workflow_id(customer_id))

        async def ended() -> bool:
            return len(fake.commands) == 2 and len(fake.transitions) == 2

        await eventually(ended, "the hold's end by the workflow's timer")
        state = await handle.query(CustomerWorkflow.state)
        signals = await june.query(StubInvoiceWorkflow.signals)
        history = await commands_in_history(handle)
        await june.terminate()
        await handle.terminate()
    place, end = fake.commands
    assert isinstance(end, ReleaseHold) and (end.expired, end.until) == (True, until)
    assert end.now is not None and end.now >= until
    assert [t.state for t in fake.transitions] == ["active", "suspended"]
    assert [s.facts.hold is not None for s in signals] == [True, False]
    assert (state.on_hold, state.hold_until) == (False, None)
    signal = f"signal:{ids.invoice_workflow_id(customer_id, 'JUNE')}"
    assert [c for c in history if c != "apply_service_state"] == [
        PLACE_HOLD, signal, SEND_NOTIFICATION, RELEASE_HOLD, signal, SEND_NOTIFICATION]
    assert [m.kind for m in fake.mails] == ["service_resumed", "service_suspended"]


async def test_release_by_update_answers_and_cancels_the_timer(temporal_env) -> None:
    client = temporal_env.client
    queue, customer_id = f"holds-{uuid.uuid4().hex[:10]}", f"c-{uuid.uuid4().hex[:8]}"
    fake = HoldLedger()
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=365)
    async with workers(client, task_queue=queue,
                      workflows=[CustomerWorkflow, StubInvoiceWorkflow],
                      activities=[fake.place_hold, fake.release_hold, *fake.effects()]):
        june = await start_stub(client, queue, customer_id, "JUNE")
        await customers.place_hold(client, queue, PlaceHold(
            customer_id, reason="dispute", until=until), delivery="d-1")
        handle = client.get_workflow_handle(ids.customer_workflow_id(customer_id))
        state = await handle.query(CustomerWorkflow.state)
        assert (state.on_hold, state.hold_until) == (True, until)
        released = await customers.release_hold(client, queue, ReleaseHold(customer_id),
                                                delivery="d-2")
        state = await handle.query(CustomerWorkflow.state)
        await june.terminate()
        await handle.terminate()
    assert released.status == "released"
    assert [type(c).__name__ for c in fake.commands] == ["PlaceHold", "ReleaseHold"]
    assert fake.commands[1].expired is False
    assert (state.on_hold, state.hold_until) == (False, None)
