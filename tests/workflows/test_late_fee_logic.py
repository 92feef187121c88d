"""Late fees in the workflows (SPEC 2.9), activities replaced: the invoice's late_fee step
asks the customer's ledger as of its planned instant (not late), and the customer's
workflow, when its ledger charges the fee, tells the invoice and sends late_fee_charged;
a waiver by update does the same without a mail."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from temporalio import activity

from client import customers
from domain import ids
from domain.collection.policy import ClassPolicy, LateFee
from domain.collection.schedule import Policy
from domain.collection.timeline import working_steps
from domain.notifications import catalog
from tests.support.workers import workers
from tests.workflows.fakes import (
    EffectActivities,
    StubInvoiceWorkflow,
    commands_in_history,
    eventually,
)
from tests.workflows.test_invoice_logic import COLLECT, PAID, FakeActivities, fresh_queue, start
from tests.workflows.test_ledger_effects import JUNE_COLLECT, start_stub
from workflows.collection.invoice import InvoiceWorkflow
from workflows.collection.payloads import (
    REQUEST_LATE_FEE,
    ChargeLateFee,
    InvoiceReevaluatedSignal,
    InvoiceWorkflowInput,
    LateFeeRequested,
    PlannedStep,
)
from workflows.ledger.customer import CustomerWorkflow
from workflows.ledger.payloads import (
    CHARGE_LATE_FEE,
    WAIVE_LATE_FEE,
    LateFeeOutcome,
    WaiveLateFee,
    WaiverOutcome,
)
from workflows.notifications.payloads import SEND_NOTIFICATION


@dataclass
class FeeRequests(FakeActivities):
    requests: list[ChargeLateFee] = field(default_factory=list)

    @activity.defn(name=REQUEST_LATE_FEE)
    async def request_late_fee(self, command: ChargeLateFee) -> LateFeeRequested:
        self.requests.append(command)
        return LateFeeRequested(requested=True)


def steps_with_fee(d: datetime, after: timedelta) -> list[PlannedStep]:
    policy = ClassPolicy(schedule=Policy(grace=timedelta(days=8)),
                         late_fee=LateFee(basis_points=200), late_fee_after=after)
    return [PlannedStep(kind=s.kind, key=s.key, at=s.at) for s in working_steps(policy, d)]


async def run_invoice(client, fake: FeeRequests, steps: list[PlannedStep]) -> dict[str, str]:
    queue = fresh_queue()
    async with workers(client, task_queue=queue, workflows=[InvoiceWorkflow],
                      activities=[fake.check_invoice, fake.reach_suspension,
                                  fake.send_notification, fake.request_late_fee]):
        handle = await start(client, queue, InvoiceWorkflowInput(
            customer_id=f"c-{uuid.uuid4().hex[:6]}", invoice_number="INV-1", currency="USD",
            steps=steps, facts=COLLECT))
        for _ in range(400):
            if fake.suspension_reached:
                break
            await asyncio.sleep(0.05)
        fake.facts = PAID
        await handle.signal(InvoiceWorkflow.reevaluated, InvoiceReevaluatedSignal(PAID))
        result = await asyncio.wait_for(handle.result(), 20)
    return result.steps


async def test_the_fee_step_asks_the_ledger_as_of_its_planned_instant(temporal_env) -> None:
    d = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    fake = FeeRequests(COLLECT)
    steps = await run_invoice(temporal_env.client, fake, steps_with_fee(d, timedelta(days=5)))
    assert steps["late_fee"] == "requested"
    (request,) = fake.requests
    assert request.charged_at == d + timedelta(days=5)  # D + late-fee-after, exactly
    assert request.now is None  # the customer's workflow stamps its own instant
    assert "late_fee" not in [m.kind for m in fake.mails]  # the ledger sends that mail


async def test_a_fee_whose_time_had_passed_is_not_charged_late(temporal_env) -> None:
    d = datetime.now(UTC).replace(microsecond=0) - timedelta(days=6)  # entered late
    fake = FeeRequests(COLLECT)
    steps = await run_invoice(temporal_env.client, fake, steps_with_fee(d, timedelta(days=5)))
    assert steps["late_fee"] == "skipped: its time had passed"
    assert fake.requests == []


@dataclass
class FeeLedger(EffectActivities):
    charged: LateFeeOutcome | None = None
    waived: WaiverOutcome | None = None
    commands: list = field(default_factory=list)

    @activity.defn(name=CHARGE_LATE_FEE)
    async def charge_late_fee(self, command: ChargeLateFee) -> LateFeeOutcome:
        self.commands.append(command)
        assert self.charged is not None
        return self.charged

    @activity.defn(name=WAIVE_LATE_FEE)
    async def waive_late_fee(self, command: WaiveLateFee) -> WaiverOutcome:
        self.commands.append(command)
        assert self.waived is not None
        return self.waived


async def test_a_charged_fee_signals_the_invoice_then_mails_and_a_waiver_does_not_mail(
        temporal_env) -> None:
    client = temporal_env.client
    queue, customer_id = f"fees-{uuid.uuid4().hex[:10]}", f"c-{uuid.uuid4().hex[:8]}"
    fee = LateFeeOutcome(status="charged", invoice_number="JUNE", amount=40, reason="charged",
                         service_state="active", balance=2040, changed=[JUNE_COLLECT])
    waived = WaiverOutcome(status="waived", invoice_number="JUNE", amount=40,
                           service_state="active", balance=2000, changed=[JUNE_COLLECT])
    fake = FeeLedger(charged=fee, waived=waived)
    async with workers(client, task_queue=queue,
                      workflows=[CustomerWorkflow, StubInvoiceWorkflow],
                      activities=[fake.charge_late_fee, fake.waive_late_fee,
                                  *fake.effects()]):
        june = await start_stub(client, queue, customer_id, "JUNE")
        at = datetime(2026, 6, 10, 3, tzinfo=UTC)
        await customers.request_late_fee(client, queue, ChargeLateFee(
            customer_id, "JUNE", charged_at=at))

        async def mailed() -> bool:
            return len(fake.mails) == 1

        await eventually(mailed, "the late_fee_charged mail")
        answer = await customers.waive_late_fee(client, queue, WaiveLateFee(customer_id, "JUNE"),
                                                delivery="d-1")

        async def both_signalled() -> bool:
            return len(await june.query(StubInvoiceWorkflow.signals)) == 2

        await eventually(both_signalled, "the waiver's signal")
        handle = client.get_workflow_handle(ids.customer_workflow_id(customer_id))
        history = await commands_in_history(handle)
        await june.terminate()
        await handle.terminate()

    assert answer == waived
    charge, waiver = fake.commands
    assert (charge.charged_at, charge.now is not None) == (at, True)
    assert isinstance(waiver, WaiveLateFee) and waiver.now is not None
    (mail,) = fake.mails
    assert (mail.kind, mail.invoice_number, mail.key) == (
        "late_fee_charged", "JUNE",
        catalog.invoice_notification_key(customer_id, "JUNE", "late_fee_charged"))
    signal = f"signal:{ids.invoice_workflow_id(customer_id, 'JUNE')}"
    assert history == [CHARGE_LATE_FEE, signal, SEND_NOTIFICATION, WAIVE_LATE_FEE, signal]
