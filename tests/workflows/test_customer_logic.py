"""CustomerWorkflow's effects (SPEC 2.4, 2.6, 3) with its activities replaced.

The ledger activities are test doubles that answer what a transaction would have decided;
the test checks what the workflow does with each outcome: signal the invoices whose facts
changed, reopen one whose workflow ended, apply a service transition once and mail it,
send the payment receipt. Runs on the real dev server, without PostgreSQL or SMTP.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import activity
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowUpdateStage
from temporalio.common import WorkflowIDConflictPolicy

from domain import ids
from domain.notifications import catalog
from tests.support.workers import workers
from tests.workflows.fakes import EffectActivities, StubInvoiceWorkflow, eventually
from workflows.collection.payloads import InvoiceFacts
from workflows.ledger.customer import CustomerWorkflow
from workflows.ledger.payloads import (
    APPLY_PAYMENT,
    ApplyPayment,
    CustomerOperation,
    CustomerWorkflowInput,
    PaymentOutcome,
    PostPaymentInput,
    ServiceTransition,
)

MAY_PAID = InvoiceFacts(number="MAY", remaining=0, collection_status="do_not_collect",
                        payment_status="paid", paid=True)
JUNE_OPEN = InvoiceFacts(number="JUNE", remaining=500, collection_status="do_not_collect",
                         payment_status="partially_paid", paid=False)


@dataclass
class FakeLedger(EffectActivities):
    outcome: PaymentOutcome
    payments: list[ApplyPayment] = field(default_factory=list)
    # Payments whose transaction waits until the test sets the event.
    held: dict[str, asyncio.Event] = field(default_factory=dict)

    @activity.defn(name=APPLY_PAYMENT)
    async def apply_payment(self, payment: ApplyPayment) -> PaymentOutcome:
        self.payments.append(payment)
        if payment.payment_id in self.held:
            await self.held[payment.payment_id].wait()
        return self.outcome

    def all(self) -> list:
        return [self.apply_payment, *self.effects()]


def applied(fake: FakeLedger) -> list[str]:
    """The payments the ledger was asked for, in order, each once. A local activity runs
    again when the workflow task that ran it is lost (here: the server refuses the
    continue-as-new of a task that a new signal overtook); the real ledger then answers
    the stored result under the same token."""
    return list(dict.fromkeys(p.payment_id for p in fake.payments))


def payment(payment_id: str) -> PostPaymentInput:
    return PostPaymentInput(processor="card", payment_id=payment_id, amount="15.00",
                            currency="USD")


async def post(client: Client, queue: str, customer_id: str, payment_id: str):
    return await client.execute_update_with_start_workflow(
        CustomerWorkflow.post_payment,
        payment(payment_id),
        start_workflow_operation=WithStartWorkflowOperation(
            CustomerWorkflow.run, CustomerWorkflowInput(customer_id=customer_id),
            id=ids.customer_workflow_id(customer_id), task_queue=queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING),
        id=ids.payment_update_id("card", payment_id, uuid.uuid4().hex),
    )


async def test_payment_that_resumes_service(temporal_env) -> None:
    """SPEC 5's payment: both invoices hear of it, service resumes once, two mails."""
    client = temporal_env.client
    queue = f"logic-{uuid.uuid4().hex[:12]}"
    customer_id = f"c-{uuid.uuid4().hex[:8]}"
    fake = FakeLedger(PaymentOutcome(
        status="accepted", changed=[MAY_PAID, JUNE_OPEN],
        transition=ServiceTransition(state="active", causes=["JUNE"], event_id=7),
        service_state="active", balance=500,
        payment_receipts=True, class_name="Residential"))
    async with workers(client, task_queue=queue,
                      workflows=[CustomerWorkflow, StubInvoiceWorkflow],
                      activities=fake.all()):
        june = await client.start_workflow(
            StubInvoiceWorkflow.run, task_queue=queue,
            id=ids.invoice_workflow_id(customer_id, "JUNE"))
        # No workflow for MAY: it was paid, so its workflow has ended; nothing to reopen.
        result = await post(client, queue, customer_id, "p1")

        assert result.status == "accepted"
        assert result.service_state == "active"  # the state after the payment, at once
        assert result.balance == 500

        async def mails_sent() -> bool:
            return len(fake.mails) == 2

        await eventually(mails_sent, "the receipt and the resumption mail")
        signals = await june.query(StubInvoiceWorkflow.signals)
        await june.terminate()
        await client.get_workflow_handle(ids.customer_workflow_id(customer_id)).terminate()

    assert [s.facts for s in signals] == [JUNE_OPEN]
    assert signals[0].service_state == "active"
    assert fake.reopened == []  # MAY is paid: its lifecycle stays ended
    assert [(t.state, t.causes, t.event_id) for t in fake.transitions] == [
        ("active", ["JUNE"], 7)]
    assert {m.kind: m.key for m in fake.mails} == {
        "service_resumed": catalog.service_notification_key(customer_id, 7, "service_resumed"),
        "payment_received": catalog.payment_receipt_key("card", "p1"),
    }
    (payment,) = fake.payments
    assert payment.customer_id == customer_id and payment.amount == 1500
    assert payment.received_at is not None and payment.applied_at is not None


async def test_open_invoice_without_a_workflow_is_reopened(temporal_env) -> None:
    """A reversal that opens a paid invoice again gives it its lifecycle back."""
    client = temporal_env.client
    queue = f"logic-{uuid.uuid4().hex[:12]}"
    customer_id = f"c-{uuid.uuid4().hex[:8]}"
    fake = FakeLedger(PaymentOutcome(
        status="accepted", changed=[JUNE_OPEN], transition=None, service_state="active",
        balance=500, payment_receipts=False, class_name="Residential"))
    async with workers(client, task_queue=queue, workflows=[CustomerWorkflow],
                      activities=fake.all()):
        await post(client, queue, customer_id, "p2")

        async def reopened() -> bool:
            return fake.reopened == ["JUNE"]

        await eventually(reopened, "JUNE reopened")
        await client.get_workflow_handle(ids.customer_workflow_id(customer_id)).terminate()

    assert fake.transitions == []
    assert fake.mails == []  # receipts off for this class, no service change


async def test_duplicate_payment_has_no_effects(temporal_env) -> None:
    client = temporal_env.client
    queue = f"logic-{uuid.uuid4().hex[:12]}"
    customer_id = f"c-{uuid.uuid4().hex[:8]}"
    fake = FakeLedger(PaymentOutcome(
        status="duplicate", changed=[], transition=None, service_state="suspended",
        balance=2000, payment_receipts=True, class_name="Residential"))
    async with workers(client, task_queue=queue, workflows=[CustomerWorkflow],
                      activities=fake.all()):
        result = await post(client, queue, customer_id, "p3")
        state = await client.get_workflow_handle(
            ids.customer_workflow_id(customer_id)).query(CustomerWorkflow.state)
        await client.get_workflow_handle(ids.customer_workflow_id(customer_id)).terminate()

    assert result.status == "duplicate"
    assert state.service_state == "suspended"
    assert fake.mails == [] and fake.transitions == [] and fake.reopened == []


async def test_continue_as_new_hands_the_whole_state_to_the_next_run(temporal_env) -> None:
    """Service state, class and work queued behind running updates all reach the next run."""
    client = temporal_env.client
    queue = f"logic-{uuid.uuid4().hex[:12]}"
    customer_id = f"c-{uuid.uuid4().hex[:8]}"
    fake = FakeLedger(PaymentOutcome(
        status="accepted", changed=[], transition=None, service_state="suspended",
        balance=2000, payment_receipts=False, class_name="Residential"),
        held={"p1": asyncio.Event()})
    async with workers(client, task_queue=queue, workflows=[CustomerWorkflow],
                      activities=fake.all()):
        # Five events: the first task stays under the limit, the next one is over it.
        first = await client.start_update_with_start_workflow(
            CustomerWorkflow.post_payment, payment("p1"),
            start_workflow_operation=WithStartWorkflowOperation(
                CustomerWorkflow.run,
                CustomerWorkflowInput(customer_id=customer_id, max_history_events=5),
                id=ids.customer_workflow_id(customer_id), task_queue=queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                # The ledger is a local activity: while p1's is held, the worker keeps
                # its workflow task alive by completing it at 80% of this timeout, which
                # is when the update is accepted and the next one can come in.
                task_timeout=timedelta(seconds=2)),
            wait_for_stage=WorkflowUpdateStage.ACCEPTED,
            id=ids.payment_update_id("card", "p1", uuid.uuid4().hex))
        handle = client.get_workflow_handle(ids.customer_workflow_id(customer_id))
        first_run = (await handle.describe()).run_id
        # The task that admits this update sees the long history and stops taking work;
        # both updates are still running (p1 holds the lock), so the run waits for them.
        second = await handle.start_update(
            CustomerWorkflow.post_payment, payment("p2"),
            wait_for_stage=WorkflowUpdateStage.ACCEPTED,
            id=ids.payment_update_id("card", "p2", uuid.uuid4().hex))
        await handle.signal(CustomerWorkflow.payment_posted, payment("p3"))  # queued
        fake.held["p1"].set()
        assert (await first.result()).status == "accepted"
        assert (await second.result()).status == "accepted"

        async def queued_payment_applied() -> bool:
            return "p3" in applied(fake)

        await eventually(queued_payment_applied, "the queued payment in the next run")
        history = await client.get_workflow_handle(
            handle.id, run_id=first_run).fetch_history()
        state = await handle.query(CustomerWorkflow.state)
        await handle.terminate()

    attributes = "workflow_execution_continued_as_new_event_attributes"
    (continued,) = [getattr(e, attributes) for e in history.events if e.HasField(attributes)]
    (handed_over,) = await client.data_converter.decode(
        continued.input.payloads, [CustomerWorkflowInput])
    carried = handed_over.state
    assert carried is not None
    assert (carried.customer_id, carried.service_state, carried.class_name) == (
        customer_id, "suspended", "Residential")
    assert carried.last_operation == "apply_payment: payment card:p2"
    assert carried.queue == [CustomerOperation(kind="payment", payment=ApplyPayment(
        processor="card", payment_id="p3", customer_id=customer_id, amount=1500,
        currency="USD"))]
    assert (carried.followups, carried.mails, carried.max_history_events) == ([], [], 5)
    assert applied(fake) == ["p1", "p2", "p3"]
    assert (state.customer_id, state.service_state, state.queued) == (
        customer_id, "suspended", 0)
