"""CustomerWorkflow.issue_invoice with its activities replaced (issue 10).

The ledger activities are test doubles: the test checks what the workflow does with each
outcome of the issue transaction: start the invoice's workflow before answering, decide
the service again when a back-dated invoice moved money, signal the invoices that changed
and reopen a paid one that is open again. Runs on the real dev server only.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from temporalio import activity
from temporalio.client import Client

from client.customers import issue_invoice
from domain import ids
from domain.notifications import catalog
from tests.support.workers import workers
from tests.workflows.fakes import EffectActivities, StubInvoiceWorkflow, eventually
from tests.workflows.test_customer_logic import JUNE_OPEN
from workflows.collection.payloads import (
    START_INVOICE_WORKFLOW,
    InvoiceFacts,
    StartInvoiceWorkflowInput,
    StartInvoiceWorkflowResult,
)
from workflows.ledger.customer import CustomerWorkflow
from workflows.ledger.payloads import (
    EVALUATE_SERVICE,
    ISSUE_INVOICE,
    EvaluateService,
    IssuedInvoice,
    IssueInvoice,
    IssueOutcome,
    ServiceOutcome,
    ServiceTransition,
)

NOW = datetime(2026, 5, 1, tzinfo=UTC)
APRIL = IssuedInvoice(
    customer_id="", number="APRIL", new_charges=5000, previous_balance=0, amount_due=5000,
    remaining=0, collection_status="do_not_collect", payment_status="paid",
    issued_at=NOW - timedelta(days=5), overdue_at=NOW + timedelta(days=20),
    suspend_at=NOW + timedelta(days=20))
MAY_OPEN = InvoiceFacts(number="MAY", remaining=5000, collection_status="collect",
                        payment_status="unpaid", paid=False)


def issued(status: str, changed: list[InvoiceFacts], **extra) -> IssueOutcome:
    return IssueOutcome(
        status=status, changed=changed, transition=None, service_state="active",
        balance=5000, class_name="Residential", invoice=APRIL, **extra)


@dataclass
class FakeLedger(EffectActivities):
    outcome: IssueOutcome
    evaluation: ServiceOutcome | None = None
    issues: list[IssueInvoice] = field(default_factory=list)
    starts: list[str] = field(default_factory=list)
    evaluations: list[EvaluateService] = field(default_factory=list)
    # Attempts of the start that fail before one succeeds (Temporal away, say).
    failing_starts: int = 0
    started: int = 0

    @activity.defn(name=ISSUE_INVOICE)
    async def issue_invoice(self, command: IssueInvoice) -> IssueOutcome:
        self.issues.append(command)
        return self.outcome

    @activity.defn(name=START_INVOICE_WORKFLOW)
    async def start_invoice(self, input: StartInvoiceWorkflowInput
                            ) -> StartInvoiceWorkflowResult:
        self.starts.append(input.invoice_number)
        if self.failing_starts:
            self.failing_starts -= 1
            raise RuntimeError("Temporal is away")
        self.started += 1
        return StartInvoiceWorkflowResult(
            workflow="started" if self.started == 1 else "already started")

    @activity.defn(name=EVALUATE_SERVICE)
    async def evaluate_service(self, command: EvaluateService) -> ServiceOutcome:
        self.evaluations.append(command)
        assert self.evaluation is not None
        return self.evaluation

    def all(self) -> list:
        return [self.issue_invoice, self.start_invoice, self.evaluate_service,
                *self.effects()]


def april(customer_id: str) -> IssueInvoice:
    return IssueInvoice(customer_id=customer_id, number="APRIL", new_charges=5000,
                        issued_at=APRIL.issued_at, due_text="2026-05-20",
                        overdue_at=APRIL.overdue_at, suspend_at=APRIL.suspend_at)


async def issue(client: Client, queue: str, customer_id: str) -> IssueOutcome:
    return await issue_invoice(client, queue, april(customer_id), delivery=uuid.uuid4().hex)


async def test_created_invoice_has_its_workflow_started_before_the_answer(temporal_env) -> None:
    client = temporal_env.client
    queue = f"issue-{uuid.uuid4().hex[:12]}"
    customer_id = f"c-{uuid.uuid4().hex[:8]}"
    fake = FakeLedger(issued("created", []), failing_starts=2)
    async with workers(client, task_queue=queue, workflows=[CustomerWorkflow],
                      activities=fake.all()):
        result = await issue(client, queue, customer_id)
        again = await issue(client, queue, customer_id)  # the same command once more
        await client.get_workflow_handle(ids.customer_workflow_id(customer_id)).terminate()

    assert (result.status, result.workflow) == ("created", "started")
    assert result.invoice == APRIL and result.service_state == "active"
    assert fake.starts == ["APRIL"] * 4  # retried until it succeeded, then once more
    assert again.workflow == "already started"
    # The command reaches the ledger as the caller built it, both times.
    assert fake.issues == [april(customer_id)] * 2
    assert fake.evaluations == [] and fake.reopened == [] and fake.mails == []


async def test_conflict_is_an_answer_and_starts_nothing(temporal_env) -> None:
    client = temporal_env.client
    queue = f"issue-{uuid.uuid4().hex[:12]}"
    customer_id = f"c-{uuid.uuid4().hex[:8]}"
    fake = FakeLedger(issued("conflict", [], conflict_fields=["new_charges"]))
    async with workers(client, task_queue=queue, workflows=[CustomerWorkflow],
                      activities=fake.all()):
        result = await issue(client, queue, customer_id)
        await client.get_workflow_handle(ids.customer_workflow_id(customer_id)).terminate()

    assert (result.status, result.conflict_fields, result.workflow) == (
        "conflict", ["new_charges"], None)
    assert fake.starts == []


async def test_back_dated_invoice_signals_reopens_and_decides_the_service(temporal_env) -> None:
    """APRIL arrives late and takes MAY's payment: JUNE (running) hears of its new facts,
    MAY (paid, its workflow ended) gets its lifecycle back, and the service is decided
    again at once; the suspension it records is provisioned and mailed."""
    client = temporal_env.client
    queue = f"issue-{uuid.uuid4().hex[:12]}"
    customer_id = f"c-{uuid.uuid4().hex[:8]}"
    transition = ServiceTransition(state="suspended", causes=["MAY"], event_id=9)
    fake = FakeLedger(
        issued("created", [MAY_OPEN, JUNE_OPEN]),
        evaluation=ServiceOutcome(
            changed=[], transition=transition, service_state="suspended",
            service_before="active", balance=5000, class_name="Residential"))
    async with workers(client, task_queue=queue,
                      workflows=[CustomerWorkflow, StubInvoiceWorkflow],
                      activities=fake.all()):
        june = await client.start_workflow(
            StubInvoiceWorkflow.run, task_queue=queue,
            id=ids.invoice_workflow_id(customer_id, "JUNE"))
        result = await issue(client, queue, customer_id)

        async def followed_up() -> bool:
            return len(fake.mails) == 1

        await eventually(followed_up, "the suspension mail")
        signals = await june.query(StubInvoiceWorkflow.signals)
        await june.terminate()
        await client.get_workflow_handle(ids.customer_workflow_id(customer_id)).terminate()

    assert (result.status, result.workflow, result.service_state) == (
        "created", "started", "suspended")
    assert result.transition == transition
    (evaluation,) = fake.evaluations
    assert evaluation == EvaluateService(
        customer_id=customer_id, reason="back-dated invoice APRIL issued", now=evaluation.now)
    assert evaluation.now is not None and evaluation.now.tzinfo is not None
    assert [s.facts for s in signals] == [JUNE_OPEN]
    assert signals[0].service_state == "suspended"
    assert fake.reopened == ["MAY"]
    assert [(t.state, t.causes, t.event_id) for t in fake.transitions] == [
        ("suspended", ["MAY"], 9)]
    assert [(m.kind, m.key) for m in fake.mails] == [
        ("service_suspended",
         catalog.service_notification_key(customer_id, 9, "service_suspended"))]
