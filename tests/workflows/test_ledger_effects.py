"""Every ledger operation's effects in CustomerWorkflow (SPEC 2.4, 2.6, 3), activities replaced.

Each case sends one command the way its caller does (client/customers.py), lets a test
double of the ledger activity answer the outcome a transaction would have, and checks
what the workflow does with it: the answer, the invoices signalled, the provisioning,
the mails, and (from the run's history) that nothing else was asked for. Payments and
invoices have their own files (test_customer_logic, test_issue_logic). Real dev server,
no PostgreSQL or SMTP.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from client import customers
from domain import ids
from domain.notifications import catalog
from tests.support.workers import workers
from tests.workflows.fakes import (
    EffectActivities,
    StubInvoiceWorkflow,
    commands_in_history,
    eventually,
)
from tests.workflows.test_issue_logic import APRIL
from workflows.collection.payloads import APPLY_SERVICE_STATE, InvoiceFacts
from workflows.ledger.customer import CustomerWorkflow
from workflows.ledger.payloads import (
    APPLY_PAYMENT,
    ASSIGN_UNMATCHED,
    EVALUATE_SERVICE,
    ISSUE_INVOICE,
    REEVALUATE_CUSTOMER,
    REVERSE_PAYMENT,
    ApplyPayment,
    AssignmentOutcome,
    AssignPayment,
    EvaluateService,
    InvoiceChange,
    IssueInvoice,
    IssueOutcome,
    PaymentOutcome,
    Reevaluate,
    ReevaluationOutcome,
    ReversalOutcome,
    ReversePayment,
    ServiceOutcome,
    ServiceTransition,
)
from workflows.notifications.payloads import SEND_NOTIFICATION

JUNE_COLLECT = InvoiceFacts(number="JUNE", remaining=2000, collection_status="collect",
                            payment_status="unpaid", paid=False)
SUSPENDED = ServiceTransition(state="suspended", causes=["JUNE"], event_id=11)
RESUMED = ServiceTransition(state="active", causes=["JUNE"], event_id=12)


def _answer(outcome: Any) -> Any:
    """The outcome the test set, or a refusal (never a retry loop) when it set none."""
    if outcome is None:
        raise ApplicationError("the test gave this activity no outcome", non_retryable=True)
    return outcome


@dataclass
class FakeLedger(EffectActivities):
    """Every ledger activity under its real name, answering the outcome the test set and
    recording each command in ``commands`` (in the order they ran)."""

    reversal: ReversalOutcome | None = None
    assignments: dict[str, AssignmentOutcome] = field(default_factory=dict)  # payment id
    reevaluation: ReevaluationOutcome | None = None  # ``dry_run`` is the command's
    service: ServiceOutcome | None = None
    commands: list[Any] = field(default_factory=list)

    @activity.defn(name=ISSUE_INVOICE)
    async def issue_invoice(self, command: IssueInvoice) -> IssueOutcome:
        self.commands.append(command)
        return _answer(None)

    @activity.defn(name=APPLY_PAYMENT)
    async def apply_payment(self, command: ApplyPayment) -> PaymentOutcome:
        self.commands.append(command)
        return _answer(None)

    @activity.defn(name=REVERSE_PAYMENT)
    async def reverse_payment(self, command: ReversePayment) -> ReversalOutcome:
        self.commands.append(command)
        return _answer(self.reversal)

    @activity.defn(name=ASSIGN_UNMATCHED)
    async def assign_unmatched(self, command: AssignPayment) -> AssignmentOutcome:
        self.commands.append(command)
        return _answer(self.assignments.get(command.payment_id))

    @activity.defn(name=REEVALUATE_CUSTOMER)
    async def reevaluate_customer(self, command: Reevaluate) -> ReevaluationOutcome:
        self.commands.append(command)
        outcome = _answer(self.reevaluation)
        return replace(outcome, customer_id=command.customer_id, dry_run=command.dry_run)

    @activity.defn(name=EVALUATE_SERVICE)
    async def evaluate_service(self, command: EvaluateService) -> ServiceOutcome:
        self.commands.append(command)
        return _answer(self.service)

    def all(self) -> list:
        return [self.issue_invoice, self.apply_payment, self.reverse_payment,
                self.assign_unmatched, self.reevaluate_customer, self.evaluate_service,
                *self.effects()]


def fresh() -> tuple[str, str]:
    """A task queue and a customer of this test only."""
    return f"effects-{uuid.uuid4().hex[:12]}", f"c-{uuid.uuid4().hex[:8]}"


def customer_handle(client: Client, customer_id: str) -> WorkflowHandle:
    return client.get_workflow_handle(ids.customer_workflow_id(customer_id))


async def start_stub(client: Client, queue: str, customer_id: str, number: str
                     ) -> WorkflowHandle:
    return await client.start_workflow(StubInvoiceWorkflow.run, task_queue=queue,
                                       id=ids.invoice_workflow_id(customer_id, number))


def service_mail_key(customer_id: str, transition: ServiceTransition) -> str:
    kind = catalog.SERVICE_MAIL[transition.state]
    return catalog.service_notification_key(customer_id, transition.event_id, kind)


# --- reversal ----------------------------------------------------------------------------


async def test_reversal_that_suspends_signals_provisions_and_mails(temporal_env) -> None:
    """A chargeback opens JUNE again and suspends: JUNE's workflow hears of its facts, then
    provisioning gets the suspension, then its mail goes; the caller gets the outcome."""
    client = temporal_env.client
    queue, customer_id = fresh()
    outcome = ReversalOutcome(
        status="reversed", service_state="suspended", service_before="active", balance=2000,
        changed=[JUNE_COLLECT], transition=SUSPENDED, class_name="Residential")
    fake = FakeLedger(reversal=outcome)
    async with workers(client, task_queue=queue,
                      workflows=[CustomerWorkflow, StubInvoiceWorkflow],
                      activities=fake.all()):
        june = await start_stub(client, queue, customer_id, "JUNE")
        result = await customers.reverse_payment(client, queue, ReversePayment(
            customer_id=customer_id, processor="card", payment_id="p-9", reason="chargeback"))

        async def mailed() -> bool:
            return len(fake.mails) == 1

        await eventually(mailed, "the suspension mail")
        signals = await june.query(StubInvoiceWorkflow.signals)
        handle = customer_handle(client, customer_id)
        state = await handle.query(CustomerWorkflow.state)
        history = await commands_in_history(handle)
        await june.terminate()
        await handle.terminate()

    assert result == outcome
    (command,) = fake.commands
    assert command == ReversePayment(customer_id=customer_id, processor="card",
                                     payment_id="p-9", reason="chargeback", now=command.now)
    assert command.now is not None and command.now.tzinfo is not None
    assert [s.facts for s in signals] == [JUNE_COLLECT]
    assert signals[0].service_state == "suspended"
    assert fake.reopened == []  # JUNE's workflow runs: the signal reached it
    assert [(t.customer_id, t.state, t.causes, t.event_id) for t in fake.transitions] == [
        (customer_id, "suspended", ["JUNE"], 11)]
    (mail,) = fake.mails
    assert (mail.kind, mail.key, mail.customer_id, mail.service_event_id,
            mail.invoice_number) == (
        "service_suspended",
        catalog.service_notification_key(customer_id, 11, "service_suspended"),
        customer_id, 11, "JUNE")
    # In this order, and nothing more.
    assert history == [REVERSE_PAYMENT, f"signal:{ids.invoice_workflow_id(customer_id, 'JUNE')}",
                       APPLY_SERVICE_STATE, SEND_NOTIFICATION]
    assert (state.service_state, state.queued, state.followups) == ("suspended", 0, 0)


# --- assignment of an unmatched payment -------------------------------------------------


async def test_assigned_payment_gets_its_receipt_already_assigned_gets_nothing(
        temporal_env) -> None:
    """``already_assigned`` (receipts on for the class) changes nothing and mails nothing;
    the payment assigned after it gets its payment_received mail, keyed by the payment
    (its id may contain ":")."""
    client = temporal_env.client
    queue, customer_id = fresh()
    already = AssignmentOutcome(status="already_assigned", service_state="active",
                                balance=0, payment_receipts=True)
    assigned = AssignmentOutcome(status="assigned", service_state="active", balance=0,
                                 payment_receipts=True, class_name="Residential")
    fake = FakeLedger(assignments={"u-1": already, "wire:42": assigned})
    async with workers(client, task_queue=queue, workflows=[CustomerWorkflow],
                      activities=fake.all()):
        first = await customers.assign_payment(client, queue, AssignPayment(
            customer_id=customer_id, processor="bank", payment_id="u-1"))
        second = await customers.assign_payment(client, queue, AssignPayment(
            customer_id=customer_id, processor="bank", payment_id="wire:42"))

        async def mailed() -> bool:
            return len(fake.mails) >= 1

        await eventually(mailed, "the receipt")
        handle = customer_handle(client, customer_id)
        # Effects are carried out in order: by the time the second payment's receipt was
        # scheduled, anything the first had set in motion is in the history too.
        history = await commands_in_history(handle)
        await handle.terminate()

    assert (first, second) == (already, assigned)
    assert [(c.customer_id, c.processor, c.payment_id) for c in fake.commands] == [
        (customer_id, "bank", "u-1"), (customer_id, "bank", "wire:42")]
    assert all(isinstance(c, AssignPayment) and c.now is not None for c in fake.commands)
    assert history == [ASSIGN_UNMATCHED, ASSIGN_UNMATCHED, SEND_NOTIFICATION]
    (mail,) = fake.mails
    assert (mail.kind, mail.key, mail.customer_id, mail.processor, mail.payment_id) == (
        "payment_received", catalog.payment_receipt_key("bank", "wire:42"), customer_id,
        "bank", "wire:42")
    assert fake.transitions == [] and fake.reopened == []


async def test_assignment_that_resumes_service_without_receipts(temporal_env) -> None:
    """Receipts off for the class: the resumption is provisioned and mailed, no receipt."""
    client = temporal_env.client
    queue, customer_id = fresh()
    assigned = AssignmentOutcome(status="assigned", service_state="active", balance=0,
                                 transition=RESUMED, payment_receipts=False)
    fake = FakeLedger(assignments={"u-2": assigned})
    async with workers(client, task_queue=queue, workflows=[CustomerWorkflow],
                      activities=fake.all()):
        result = await customers.assign_payment(client, queue, AssignPayment(
            customer_id=customer_id, processor="bank", payment_id="u-2"))

        async def mailed() -> bool:
            return len(fake.mails) == 1

        await eventually(mailed, "the resumption mail")
        handle = customer_handle(client, customer_id)
        history = await commands_in_history(handle)
        await handle.terminate()

    assert result == assigned
    assert history == [ASSIGN_UNMATCHED, APPLY_SERVICE_STATE, SEND_NOTIFICATION]
    assert [(t.state, t.event_id) for t in fake.transitions] == [("active", 12)]
    assert [(m.kind, m.key) for m in fake.mails] == [
        ("service_resumed", service_mail_key(customer_id, RESUMED))]


# --- re-evaluation (finance re-run) -----------------------------------------------------


async def test_dry_run_answers_the_changes_and_sets_nothing_in_motion(temporal_env) -> None:
    """A dry run answers what would change (the invoice flips, the suspension) and nothing
    follows: no signal, no provisioning, no mail. The same re-run for real then does all
    three, once (its effects come after the dry run's would have)."""
    client = temporal_env.client
    queue, customer_id = fresh()
    would = ReevaluationOutcome(
        customer_id=customer_id, dry_run=True,
        changes=[InvoiceChange(number="JUNE", before_status="do_not_collect",
                               after_status="collect", remaining=2000)],
        service_before="active", service_after="suspended", balance=2000,
        changed=[JUNE_COLLECT], transition=SUSPENDED, class_name="Residential")
    fake = FakeLedger(reevaluation=would)
    async with workers(client, task_queue=queue,
                      workflows=[CustomerWorkflow, StubInvoiceWorkflow],
                      activities=fake.all()):
        june = await start_stub(client, queue, customer_id, "JUNE")
        dry = await customers.reevaluate(
            client, queue, Reevaluate(customer_id=customer_id, dry_run=True,
                                      reason="threshold 10 -> 15"),
            rerun_workflow_id="rerun-dry-1")
        handle = customer_handle(client, customer_id)
        after_dry_run = await commands_in_history(handle)
        real = await customers.reevaluate(
            client, queue, Reevaluate(customer_id=customer_id, reason="threshold 10 -> 15"),
            rerun_workflow_id="rerun-1")

        async def mailed() -> bool:
            return len(fake.mails) == 1

        await eventually(mailed, "the suspension mail of the real re-run")
        signals = await june.query(StubInvoiceWorkflow.signals)
        history = await commands_in_history(handle)
        await june.terminate()
        await handle.terminate()

    assert dry == would  # the changes and the transition, as the ledger answered them
    assert real == replace(would, dry_run=False)
    assert [(c.dry_run, c.reason) for c in fake.commands] == [
        (True, "threshold 10 -> 15"), (False, "threshold 10 -> 15")]
    assert all(isinstance(c, Reevaluate) and c.now is not None for c in fake.commands)
    assert after_dry_run == [REEVALUATE_CUSTOMER]
    # One signal, one provisioning, one mail: the real re-run's, none of the dry run's.
    assert history == [REEVALUATE_CUSTOMER, REEVALUATE_CUSTOMER,
                       f"signal:{ids.invoice_workflow_id(customer_id, 'JUNE')}",
                       APPLY_SERVICE_STATE, SEND_NOTIFICATION]
    assert [s.facts for s in signals] == [JUNE_COLLECT]
    assert [(t.state, t.event_id) for t in fake.transitions] == [("suspended", 11)]
    assert [(m.kind, m.key) for m in fake.mails] == [
        ("service_suspended", service_mail_key(customer_id, SUSPENDED))]


async def test_dry_run_leaves_the_published_service_state_alone(temporal_env) -> None:
    client = temporal_env.client
    queue, customer_id = fresh()
    fake = FakeLedger(
        service=ServiceOutcome(service_state="active", service_before="active", balance=0),
        reevaluation=ReevaluationOutcome(
            customer_id=customer_id, dry_run=True, changes=[], service_before="active",
            service_after="suspended", balance=2000))
    async with workers(client, task_queue=queue, workflows=[CustomerWorkflow],
                      activities=fake.all()):
        await customers.wake_for_service_evaluation(client, queue, EvaluateService(
            customer_id=customer_id, reason="test"))
        handle = customer_handle(client, customer_id)

        async def evaluated() -> bool:
            return (await handle.query(CustomerWorkflow.state)).service_state == "active"

        await eventually(evaluated, "the service state")
        await customers.reevaluate(
            client, queue, Reevaluate(customer_id=customer_id, dry_run=True),
            rerun_workflow_id="rerun-dry-2")
        state = await handle.query(CustomerWorkflow.state)
        await handle.terminate()

    assert state.service_state == "active"


# --- the service decision (evaluate_service signal) --------------------------------------


@pytest.mark.parametrize("transition", [SUSPENDED, RESUMED], ids=["suspends", "resumes"])
async def test_evaluate_service_signal_provisions_and_mails(temporal_env,
                                                            transition) -> None:
    """The signal reach_suspension sends (signal-with-start): the ledger gets the command
    stamped with the workflow's clock; the transition it answers is provisioned and
    mailed."""
    client = temporal_env.client
    queue, customer_id = fresh()
    fake = FakeLedger(service=ServiceOutcome(
        service_state=transition.state,
        service_before="active" if transition.state == "suspended" else "suspended",
        balance=2000, transition=transition))
    sent = EvaluateService(customer_id=customer_id,
                           reason="invoice JUNE reached its suspension time",
                           invoice_number="JUNE")
    async with workers(client, task_queue=queue, workflows=[CustomerWorkflow],
                      activities=fake.all()):
        await customers.wake_for_service_evaluation(client, queue, sent)

        async def mailed() -> bool:
            return len(fake.mails) == 1

        await eventually(mailed, "the service mail")
        handle = customer_handle(client, customer_id)
        state = await handle.query(CustomerWorkflow.state)
        history = await commands_in_history(handle)
        await handle.terminate()

    (command,) = fake.commands
    assert sent.now is None
    assert command == replace(sent, now=command.now)
    assert command.now is not None and command.now.tzinfo is not None
    assert history == [EVALUATE_SERVICE, APPLY_SERVICE_STATE, SEND_NOTIFICATION]
    assert [(t.customer_id, t.state, t.causes, t.event_id) for t in fake.transitions] == [
        (customer_id, transition.state, ["JUNE"], transition.event_id)]
    (mail,) = fake.mails
    assert (mail.kind, mail.key, mail.service_event_id, mail.invoice_number) == (
        catalog.SERVICE_MAIL[transition.state], service_mail_key(customer_id, transition),
        transition.event_id, "JUNE")
    assert state.service_state == transition.state


async def test_evaluate_service_signal_for_another_customer_is_ignored(temporal_env) -> None:
    client = temporal_env.client
    queue, customer_id = fresh()
    fake = FakeLedger(service=ServiceOutcome(service_state="active", service_before="active",
                                             balance=0))
    async with workers(client, task_queue=queue, workflows=[CustomerWorkflow],
                      activities=fake.all()):
        await customers.wake_for_service_evaluation(client, queue, EvaluateService(
            customer_id=customer_id, reason="first"))
        handle = customer_handle(client, customer_id)
        await handle.signal(CustomerWorkflow.evaluate_service, EvaluateService(
            customer_id="someone-else", reason="misdirected"))
        await handle.signal(CustomerWorkflow.evaluate_service, EvaluateService(
            customer_id=customer_id, reason="last"))

        async def last_ran() -> bool:
            return any(c.reason == "last" for c in fake.commands)

        await eventually(last_ran, "the last evaluation")
        await handle.terminate()

    assert [c.customer_id for c in fake.commands] == [customer_id, customer_id]


# --- refusals: a command for another customer --------------------------------------------


def _for(other: str) -> dict[str, tuple[Any, Any]]:
    """Each update with a well-formed command for customer ``other``."""
    return {
        "issue_invoice": (CustomerWorkflow.issue_invoice, IssueInvoice(
            customer_id=other, number="APRIL", new_charges=5000, issued_at=APRIL.issued_at,
            due_text="2026-05-20", overdue_at=APRIL.overdue_at,
            suspend_at=APRIL.suspend_at)),
        "post_payment": (CustomerWorkflow.post_payment, ApplyPayment(
            processor="card", payment_id="p-1", customer_id=other, amount=1500,
            currency="USD")),
        "reverse_payment": (CustomerWorkflow.reverse_payment, ReversePayment(
            customer_id=other, processor="card", payment_id="p-1")),
        "assign_payment": (CustomerWorkflow.assign_payment, AssignPayment(
            customer_id=other, processor="bank", payment_id="u-1")),
        "reevaluate": (CustomerWorkflow.reevaluate, Reevaluate(customer_id=other)),
    }


@pytest.mark.parametrize("update", list(_for("x")))
async def test_command_for_another_customer_is_refused_before_any_activity(
        temporal_env, update) -> None:
    """The validator refuses it (nothing in history, no transaction) with the reason."""
    client = temporal_env.client
    queue, customer_id = fresh()
    other = f"{customer_id}-other"
    method, command = _for(other)[update]
    fake = FakeLedger()
    async with workers(client, task_queue=queue, workflows=[CustomerWorkflow],
                      activities=fake.all()):
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await client.execute_update_with_start_workflow(
                method, command,
                start_workflow_operation=customers.start_operation(customer_id, queue),
                id=f"refused-{uuid.uuid4().hex}")
        handle = customer_handle(client, customer_id)
        state = await handle.query(CustomerWorkflow.state)
        history = await commands_in_history(handle)
        await handle.terminate()

    assert customers.refusal_message(refused.value) == (
        f"a command for customer {other!r} sent to the workflow of {customer_id!r}")
    assert fake.commands == [] and history == []
    assert (state.service_state, state.last_operation) == ("unknown", "started")


async def test_payment_signal_for_another_customer_is_ignored(temporal_env) -> None:
    """The fire-and-forget path has nobody to refuse to: the payment is dropped (logged),
    the customer's own work goes on."""
    client = temporal_env.client
    queue, customer_id = fresh()
    fake = FakeLedger(service=ServiceOutcome(service_state="active", service_before="active",
                                             balance=0))
    async with workers(client, task_queue=queue, workflows=[CustomerWorkflow],
                      activities=fake.all()):
        await customers.wake_for_service_evaluation(client, queue, EvaluateService(
            customer_id=customer_id, reason="first"))
        handle = customer_handle(client, customer_id)
        await handle.signal(CustomerWorkflow.payment_posted, ApplyPayment(
            processor="card", payment_id="p-1", customer_id="someone-else", amount=1500,
            currency="USD"))
        await handle.signal(CustomerWorkflow.evaluate_service, EvaluateService(
            customer_id=customer_id, reason="last"))

        async def last_ran() -> bool:
            return any(c.reason == "last" for c in fake.commands)

        await eventually(last_ran, "the last evaluation")
        history = await commands_in_history(handle)
        await handle.terminate()

    assert [type(c) for c in fake.commands] == [EvaluateService, EvaluateService]
    assert history == [EVALUATE_SERVICE, EVALUATE_SERVICE]
