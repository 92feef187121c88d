"""InvoiceWorkflow's timeline (SPEC 2.3, 2.5) with its activities replaced.

The workflow runs on the real Temporal dev server with time skipping, but the ledger and
mail activities are test doubles registered under the same names, so each case plays a
whole invoice lifecycle in well under a second and without PostgreSQL or SMTP. The
real-server tests (test_scenarios, test_worked_example) stay on top of these.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from temporalio import activity
from temporalio.client import Client, WorkflowHandle

from domain import ids
from domain.collection.schedule import Policy, plan_steps
from domain.notifications import catalog
from tests.support.histories import record_history
from tests.support.workers import workers
from workflows.collection.invoice import InvoiceWorkflow
from workflows.collection.payloads import (
    CHECK_INVOICE,
    REACH_SUSPENSION,
    CheckInvoiceInput,
    InvoiceFacts,
    InvoiceReevaluatedSignal,
    InvoiceWorkflowInput,
    PlannedStep,
    ReachSuspension,
    SuspensionReached,
)
from workflows.notifications.payloads import (
    SEND_NOTIFICATION,
    SendNotificationInput,
    SendNotificationResult,
)

POLICY = Policy(reminders=(timedelta(days=3),), grace=timedelta(days=2),
                warning=timedelta(days=1))
COLLECT = InvoiceFacts(number="INV-1", remaining=2000, collection_status="collect",
                       payment_status="unpaid", paid=False)
NOT_COLLECT = replace(COLLECT, remaining=500, collection_status="do_not_collect",
                      payment_status="partially_paid")
PAID = replace(COLLECT, remaining=0, collection_status="do_not_collect",
               payment_status="paid", paid=True)


@dataclass
class FakeActivities:
    """What the ledger says about the invoice, and what the workflow asked for."""

    facts: InvoiceFacts
    mails: list[SendNotificationInput] = field(default_factory=list)
    suspension_reached: list[datetime] = field(default_factory=list)

    @activity.defn(name=CHECK_INVOICE)
    async def check_invoice(self, input: CheckInvoiceInput) -> InvoiceFacts:
        return self.facts

    @activity.defn(name=REACH_SUSPENSION)
    async def reach_suspension(self, input: ReachSuspension) -> SuspensionReached:
        self.suspension_reached.append(input.at)
        return SuspensionReached(recorded=True)

    @activity.defn(name=SEND_NOTIFICATION)
    async def send_notification(self, input: SendNotificationInput) -> SendNotificationResult:
        self.mails.append(input)
        return SendNotificationResult(key=input.key, status="sent")

    def kinds(self) -> list[str]:
        return [m.kind for m in self.mails]


def workflow_input(customer_id: str, overdue_at: datetime, facts: InvoiceFacts
                   ) -> InvoiceWorkflowInput:
    steps = plan_steps(overdue_at, POLICY)
    return InvoiceWorkflowInput(
        customer_id=customer_id, invoice_number=facts.number, currency="USD",
        steps=[PlannedStep(kind=str(s.kind), key=s.key, at=s.at) for s in steps],
        facts=facts,
    )


async def start(client: Client, task_queue: str, input: InvoiceWorkflowInput
                ) -> WorkflowHandle:
    return await client.start_workflow(
        InvoiceWorkflow.run, input, task_queue=task_queue,
        id=ids.invoice_workflow_id(input.customer_id, input.invoice_number)
        + f":{uuid.uuid4().hex[:6]}",
    )


async def until_idle(handle: WorkflowHandle) -> None:
    """Wait until every step has been decided (time skipping gets there at once)."""
    for _ in range(400):
        status = await handle.query(InvoiceWorkflow.status)
        if len(status.steps) == len(POLICY.reminders) + 3 and status.next_step is None:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"workflow did not get there: {status}")


def fresh_queue() -> str:
    return f"logic-{uuid.uuid4().hex[:12]}"


async def run_timeline(client: Client, fake: FakeActivities, overdue_at: datetime,
                       facts: InvoiceFacts, *, pay_at_end: bool = True) -> tuple[dict, str]:
    queue = fresh_queue()
    customer_id = f"c-{uuid.uuid4().hex[:8]}"
    async with workers(client, task_queue=queue, workflows=[InvoiceWorkflow],
                      activities=[fake.check_invoice, fake.reach_suspension,
                                  fake.send_notification]):
        handle = await start(client, queue, workflow_input(customer_id, overdue_at, facts))
        await until_idle(handle)
        status = await handle.query(InvoiceWorkflow.status)
        if pay_at_end:
            fake.facts = PAID
            await handle.signal(InvoiceWorkflow.reevaluated, InvoiceReevaluatedSignal(PAID))
            result = await handle.result()
            assert result.outcome == "paid"
        else:
            await handle.terminate()
    return status.steps, customer_id


async def test_collect_invoice_gets_every_step_at_its_time(temporal_env) -> None:
    d = datetime.now(UTC).replace(microsecond=0) + timedelta(days=5)
    fake = FakeActivities(COLLECT)
    steps, customer_id = await run_timeline(temporal_env.client, fake, d, COLLECT)

    assert fake.kinds() == ["invoice_issued", "due_reminder", "overdue",
                            "suspension_warning"]
    assert steps == {"due_reminder:3d": "sent", "overdue": "sent",
                     "suspension_warning": "sent", "suspension": "reached"}
    expected = {"due_reminder": d - timedelta(days=3), "overdue": d,
                "suspension_warning": d + timedelta(days=1)}
    for mail in fake.mails[1:]:
        assert mail.at is not None
        assert abs(mail.at - expected[mail.kind]) < timedelta(minutes=1), mail
    assert len(fake.suspension_reached) == 1
    assert abs(fake.suspension_reached[0] - (d + POLICY.grace)) < timedelta(minutes=1)
    # Keys are built by the one rule (SPEC 2.6: at most once per key).
    assert [m.key for m in fake.mails] == [
        catalog.invoice_notification_key(customer_id, "INV-1", step)
        for step in ("invoice_issued", "due_reminder:3d", "overdue", "suspension_warning")
    ]


async def test_do_not_collect_invoice_gets_no_balance_mail(temporal_env) -> None:
    d = datetime.now(UTC).replace(microsecond=0) + timedelta(days=5)
    fake = FakeActivities(NOT_COLLECT)
    steps, _ = await run_timeline(temporal_env.client, fake, d, NOT_COLLECT)

    assert fake.kinds() == ["invoice_issued"]
    assert steps["due_reminder:3d"] == "skipped: do_not_collect"
    assert steps["overdue"] == "skipped: do_not_collect"
    assert steps["suspension_warning"] == "skipped: do_not_collect"
    # The suspension time is recorded whatever the status: a later reversal that makes the
    # invoice `collect` must suspend at once (SPEC 2.4); the customer decides.
    assert steps["suspension"] == "reached"
    assert len(fake.suspension_reached) == 1


async def test_invoice_entered_after_its_suspension_time(temporal_env) -> None:
    """SPEC 2.5: passed reminders and warnings are skipped; overdue and suspension run."""
    d = datetime.now(UTC).replace(microsecond=0) - timedelta(days=4)
    fake = FakeActivities(COLLECT)
    steps, _ = await run_timeline(temporal_env.client, fake, d, COLLECT)

    assert fake.kinds() == ["invoice_issued", "overdue"]
    assert steps["due_reminder:3d"] == "skipped: its time had passed"
    assert steps["suspension_warning"] == "skipped: its time had passed"
    assert steps["overdue"] == "sent"
    assert steps["suspension"] == "reached"
    assert len(fake.suspension_reached) == 1


async def test_paid_before_the_due_date_ends_without_balance_mail(temporal_env) -> None:
    d = datetime.now(UTC).replace(microsecond=0) + timedelta(days=5)
    fake = FakeActivities(COLLECT)
    queue = fresh_queue()
    async with workers(temporal_env.client, task_queue=queue, workflows=[InvoiceWorkflow],
                      activities=[fake.check_invoice, fake.reach_suspension,
                                  fake.send_notification]):
        handle = await start(temporal_env.client, queue, workflow_input("c-early", d, COLLECT))
        fake.facts = PAID
        await handle.signal(InvoiceWorkflow.reevaluated, InvoiceReevaluatedSignal(PAID))
        result = await handle.result()

    assert result.outcome == "paid"
    assert fake.kinds() == ["invoice_issued"]
    assert fake.suspension_reached == []


async def test_a_check_overtaken_by_a_payment_does_not_undo_it(temporal_env) -> None:
    """A step's check that read the ledger before a payment committed, but returned after
    the payment's re-evaluation arrived, must not put the invoice back to unpaid. Every
    workflow task replays from the history (no cache), as after a worker restart."""
    client = temporal_env.client
    fake = FakeActivities(COLLECT)
    entered, release = asyncio.Event(), asyncio.Event()

    @activity.defn(name=CHECK_INVOICE)
    async def check_read_before_the_payment(input: CheckInvoiceInput) -> InvoiceFacts:
        entered.set()
        await release.wait()
        return COLLECT

    entered_late = datetime.now(UTC).replace(microsecond=0) - timedelta(days=4)
    queue = fresh_queue()
    async with workers(client, task_queue=queue, workflows=[InvoiceWorkflow],
                      activities=[check_read_before_the_payment, fake.reach_suspension,
                                  fake.send_notification], max_cached_workflows=0):
        handle = await start(client, queue, workflow_input("c-overtaken", entered_late,
                                                           COLLECT))
        await asyncio.wait_for(entered.wait(), 10)
        await handle.signal(InvoiceWorkflow.reevaluated, InvoiceReevaluatedSignal(PAID))
        await asyncio.sleep(0.5)
        release.set()
        result = await asyncio.wait_for(handle.result(), 20)
        await record_history(client, handle.id, "invoice_check_overtaken")

    assert result.outcome == "paid"
    assert result.steps["overdue"] == "skipped: paid"
    assert fake.kinds() == ["invoice_issued"]


async def test_checks_retried_through_an_outage_replay_with_signals_between(
        temporal_env) -> None:
    """The database is down while a step is checked and re-evaluations keep arriving (the
    shape of tests/faults' Postgres outage); with no workflow cache every task replays."""
    client = temporal_env.client
    fake = FakeActivities(COLLECT)
    down = True

    @activity.defn(name=CHECK_INVOICE)
    async def check_while_down(input: CheckInvoiceInput) -> InvoiceFacts:
        if down:
            raise RuntimeError("database unavailable")
        return fake.facts

    entered_late = datetime.now(UTC).replace(microsecond=0) - timedelta(days=4)
    queue = fresh_queue()
    async with workers(client, task_queue=queue, workflows=[InvoiceWorkflow],
                      activities=[check_while_down, fake.reach_suspension,
                                  fake.send_notification], max_cached_workflows=0):
        handle = await start(client, queue, workflow_input("c-outage", entered_late,
                                                           COLLECT))
        for _ in range(4):
            await asyncio.sleep(0.4)
            await handle.signal(InvoiceWorkflow.reevaluated,
                                InvoiceReevaluatedSignal(COLLECT, "suspended"))
        down = False
        await until_steps(handle, 4)
        fake.facts = PAID
        await handle.signal(InvoiceWorkflow.reevaluated, InvoiceReevaluatedSignal(PAID))
        result = await asyncio.wait_for(handle.result(), 20)

    assert result.outcome == "paid"
    assert result.steps["overdue"] == "sent"
    assert fake.kinds() == ["invoice_issued", "overdue"]
    assert len(fake.suspension_reached) == 1


async def until_steps(handle: WorkflowHandle, n: int) -> None:
    for _ in range(400):
        status = await handle.query(InvoiceWorkflow.status)
        if len(status.steps) == n:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"workflow did not decide {n} steps: {status}")
