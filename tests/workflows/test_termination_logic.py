"""Termination in the workflows (SPEC 2.9), activities replaced, real dev server (time
skipping): a suspension that carries its terminate-after time arms the customer's timer,
which asks the ledger then; the termination tells every open invoice (their workflows
end), provisioning, and sends service_terminated; finance's reactivation by update."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from temporalio import activity

from client import customers
from domain import ids
from tests.support.workers import workers
from tests.workflows.fakes import StubInvoiceWorkflow, commands_in_history, eventually
from tests.workflows.test_invoice_logic import (
    COLLECT,
    FakeActivities,
    fresh_queue,
    start,
    workflow_input,
)
from tests.workflows.test_ledger_effects import JUNE_COLLECT, FakeLedger, start_stub
from workflows.collection.invoice import InvoiceWorkflow
from workflows.collection.payloads import InvoiceReevaluatedSignal
from workflows.ledger.customer import CustomerWorkflow
from workflows.ledger.payloads import (
    EVALUATE_SERVICE,
    REACTIVATE_CUSTOMER,
    TERMINATE_CUSTOMER,
    EvaluateService,
    ReactivateCustomer,
    ServiceOutcome,
    ServiceTransition,
    TerminateCustomer,
    TerminationOutcome,
)


@dataclass
class TerminationLedger(FakeLedger):
    terminated: list = field(default_factory=list)

    @activity.defn(name=TERMINATE_CUSTOMER)
    async def terminate_customer(self, command: TerminateCustomer) -> TerminationOutcome:
        self.commands.append(command)
        return TerminationOutcome(
            status="terminated", reason="suspended 30d", service_state="terminated",
            service_before="suspended", balance=2000, changed=[JUNE_COLLECT],
            transition=ServiceTransition("terminated", ["JUNE"], 13))

    @activity.defn(name=REACTIVATE_CUSTOMER)
    async def reactivate_customer(self, command: ReactivateCustomer) -> TerminationOutcome:
        self.commands.append(command)
        return TerminationOutcome(
            status="reactivated", reason="reactivated", service_state="active",
            service_before="terminated", balance=0, changed=[],
            transition=ServiceTransition("active", [], 14))


async def test_the_suspensions_timer_terminates_and_tells_everyone(temporal_env) -> None:
    client = temporal_env.client
    queue, customer_id = f"term-{uuid.uuid4().hex[:10]}", f"c-{uuid.uuid4().hex[:8]}"
    terminate_at = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    fake = TerminationLedger(service=ServiceOutcome(
        service_state="suspended", service_before="active", balance=2000,
        transition=ServiceTransition("suspended", ["JUNE"], 12, terminate_at=terminate_at)))
    async with workers(client, task_queue=queue,
                       workflows=[CustomerWorkflow, StubInvoiceWorkflow],
                       activities=[*fake.all(), fake.terminate_customer,
                                   fake.reactivate_customer]):
        june = await start_stub(client, queue, customer_id, "JUNE")
        await customers.wake_for_service_evaluation(client, queue, EvaluateService(
            customer_id, "JUNE reached its suspension time", "JUNE"))

        async def terminated() -> bool:
            return [t.state for t in fake.transitions] == ["suspended", "terminated"]

        await eventually(terminated, "the termination at terminate-after")
        handle = client.get_workflow_handle(ids.customer_workflow_id(customer_id))
        back = await customers.reactivate(client, queue, ReactivateCustomer(customer_id),
                                          delivery="d-1")
        signals = await june.query(StubInvoiceWorkflow.signals)
        history = await commands_in_history(handle)
        await june.terminate()
        await handle.terminate()
    evaluate, terminate, reactivate = fake.commands
    assert isinstance(terminate, TerminateCustomer)
    assert terminate.now is not None and terminate.now >= terminate_at
    assert isinstance(reactivate, ReactivateCustomer) and back.status == "reactivated"
    assert [s.service_state for s in signals] == ["terminated"]
    assert [m.kind for m in fake.mails] == ["service_suspended", "service_terminated",
                                            "service_resumed"]
    assert [c for c in history if c.startswith(("evaluate", "terminate", "reactivate"))] == [
        EVALUATE_SERVICE, TERMINATE_CUSTOMER, REACTIVATE_CUSTOMER]


async def test_an_invoice_ends_when_its_customer_is_terminated(temporal_env) -> None:
    client = temporal_env.client
    fake = FakeActivities(COLLECT)
    queue = fresh_queue()
    d = datetime.now(UTC).replace(microsecond=0) + timedelta(days=40)
    async with workers(client, task_queue=queue, workflows=[InvoiceWorkflow],
                       activities=[fake.check_invoice, fake.reach_suspension,
                                   fake.send_notification]):
        handle = await start(client, queue, workflow_input(
            f"c-{uuid.uuid4().hex[:8]}", d, COLLECT))
        await handle.signal(InvoiceWorkflow.reevaluated, InvoiceReevaluatedSignal(
            replace(COLLECT), service_state="terminated"))
        result = await asyncio.wait_for(handle.result(), 20)
    assert result.outcome == "terminated"


async def test_a_terminated_customers_new_invoice_is_billed_but_not_dunned(
        temporal_env) -> None:
    """SPEC 2.9: termination is final for dunning. An invoice issued afterwards (overdue
    already, so every step would be due at once) sends invoice_issued and ends; finance's
    reactivation starts its workflow again."""
    client = temporal_env.client
    fake = FakeActivities(COLLECT)
    queue = fresh_queue()
    d = datetime.now(UTC).replace(microsecond=0) - timedelta(days=40)
    async with workers(client, task_queue=queue, workflows=[InvoiceWorkflow],
                       activities=[fake.check_invoice, fake.reach_suspension,
                                   fake.send_notification]):
        handle = await start(client, queue, replace(
            workflow_input(f"c-{uuid.uuid4().hex[:8]}", d, COLLECT),
            service_state="terminated"))
        result = await asyncio.wait_for(handle.result(), 20)
    assert result.outcome == "terminated" and result.steps == {}
    assert [m.kind for m in fake.mails] == ["invoice_issued"]
    assert fake.suspension_reached == []
