"""Multi-invoice and ordering cases on the real servers (SPEC 2.2-2.5, 3)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import psycopg
from temporalio.client import WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy

from db.customers import NewCustomer
from domain.ids import customer_workflow_id, invoice_workflow_id, payment_update_id
from operations.classes import ClassChange, set_class
from operations.context import Context
from operations.customers import add
from operations.invoices import IssueRequest, issue_invoice
from operations.payments import PaymentRequest, post_payment, reverse_payment
from operations.status import customer_status
from tests.support.histories import record_history
from tests.support.stack import ADMIN, Stack
from workflows.collection.invoice import InvoiceWorkflow
from workflows.ledger.customer import CustomerWorkflow
from workflows.ledger.payloads import CustomerWorkflowInput, EvaluateService, PostPaymentInput

NOW = datetime.now(UTC).replace(microsecond=0)


async def customer(stack: Stack, cid: str, *, threshold: str = "10.00") -> None:
    await stack.call(set_class, ClassChange(
        name="Residential", currency="USD", threshold=threshold, reminders="3d", grace="2d",
        warning="1d", from_address="billing@residential.test"), ADMIN)
    await stack.call(add, NewCustomer(id=cid, name=f"Customer {cid}",
                                      email=f"{cid}@example.com", class_name="Residential"),
                     ADMIN)


async def issue(stack: Stack, cid: str, number: str, charges: str, issued: datetime,
                due: datetime) -> dict:
    return await stack.call(issue_invoice, IssueRequest(
        customer_id=cid, number=number, charges=charges, issued=issued.isoformat(),
        due=due.isoformat()), ADMIN)


async def pay(stack: Stack, cid: str, payment_id: str, amount: str) -> dict:
    return await stack.call(post_payment, PaymentRequest(
        processor="card", payment_id=payment_id, customer_id=cid, amount=amount,
        currency="USD", received_at=None), None)


async def invoices(stack: Stack, cid: str) -> dict[str, dict]:
    status = await stack.call(customer_status, cid, audit=None)
    return {i["number"]: i for i in status["invoices"]}


async def until_state(stack: Stack, cid: str, state: str) -> None:
    async def check() -> bool:
        return await stack.service_state(cid) == state

    await stack.wait_for(check, timeout=90, what=f"service {state}")


async def test_overpayment_becomes_credit_for_the_next_invoice(stack: Stack) -> None:
    await customer(stack, "c-credit")
    await issue(stack, "c-credit", "I-1", "10.00", NOW - timedelta(days=1), NOW + timedelta(days=20))
    paid = await pay(stack, "c-credit", "p-30", "30.00")
    assert (paid["status"], paid["balance"]) == ("accepted", "-20.00")
    later = datetime.now(UTC) + timedelta(seconds=1)  # issued after the payment arrived
    second = await issue(stack, "c-credit", "I-2", "15.00", later, later + timedelta(days=30))
    assert (second["previous_balance"], second["amount_due"], second["remaining"]) == (
        "-20.00", "-5.00", "0.00")
    assert second["payment_status"] == "paid"
    # Both invoices are paid: their workflows end by themselves.
    for number in ("I-1", "I-2"):
        result = await stack.client.get_workflow_handle_for(
            InvoiceWorkflow.run, invoice_workflow_id("c-credit", number)).result()
        assert result.outcome == "paid"
    status = await stack.call(customer_status, "c-credit", audit=None)
    assert status["balance"] == "-5.00"
    await record_history(stack.client, invoice_workflow_id("c-credit", "I-2"), "invoice_paid_by_credit")


async def test_several_partial_payments_oldest_first(stack: Stack) -> None:
    await customer(stack, "c-partial", threshold="0")
    await issue(stack, "c-partial", "A", "10.00", NOW - timedelta(days=2), NOW + timedelta(days=20))
    await issue(stack, "c-partial", "B", "10.00", NOW - timedelta(days=1), NOW + timedelta(days=40))
    for n, amount in enumerate(("4.00", "4.00", "4.00")):
        assert (await pay(stack, "c-partial", f"p{n}", amount))["status"] == "accepted"
    rows = await invoices(stack, "c-partial")
    assert (rows["A"]["remaining"], rows["A"]["payment_status"]) == ("0.00", "paid")
    assert (rows["B"]["remaining"], rows["B"]["payment_status"]) == ("8.00", "partially_paid")
    assert rows["B"]["collection_status"] == "collect"  # threshold 0: any unpaid amount
    allocations = await stack.query_rows(
        "SELECT p.payment_id, i.number, a.amount FROM allocations a"
        " JOIN payments p ON p.id = a.payment_row_id JOIN invoices i ON i.id = a.invoice_id"
        " WHERE a.customer_id = %s ORDER BY p.id, i.issued_at", "c-partial")
    assert allocations == [("p0", "A", 400), ("p1", "A", 400), ("p2", "A", 200), ("p2", "B", 200)]


async def test_invoice_entered_after_its_due_date_is_overdue_and_suspends_at_once(
    stack: Stack, smtp_sink
) -> None:
    await customer(stack, "c-late")
    await issue(stack, "c-late", "L-1", "50.00", NOW - timedelta(days=30), NOW - timedelta(days=5))
    await until_state(stack, "c-late", "suspended")
    handle = stack.client.get_workflow_handle_for(
        InvoiceWorkflow.run, invoice_workflow_id("c-late", "L-1"))

    async def steps_done() -> bool:
        return len((await handle.query(InvoiceWorkflow.status)).steps) == 4

    await stack.wait_for(steps_done, what="all four steps decided")
    status = await handle.query(InvoiceWorkflow.status)
    assert status.steps == {
        "due_reminder:3d": "skipped: its time had passed",
        "suspension_warning": "skipped: its time had passed",
        "overdue": "sent",
        "suspension": "reached",
    }
    assert status.next_step is None and status.state == "waiting for payment"
    await record_history(stack.client, invoice_workflow_id("c-late", "L-1"), "invoice_entered_late")


async def test_reversal_suspends_again_and_payment_resumes(stack: Stack) -> None:
    await customer(stack, "c-rev")
    await issue(stack, "c-rev", "R-1", "25.00", NOW - timedelta(days=30), NOW - timedelta(days=5))
    await until_state(stack, "c-rev", "suspended")
    paid = await pay(stack, "c-rev", "p-rev", "25.00")
    assert paid["service_state"] == "active"
    reversed_ = await stack.call(reverse_payment, "card", "p-rev", ADMIN)
    assert (reversed_["status"], reversed_["service_state"]) == ("reversed", "suspended")
    rows = await invoices(stack, "c-rev")
    assert (rows["R-1"]["remaining"], rows["R-1"]["payment_status"]) == ("25.00", "unpaid")
    again = await stack.call(reverse_payment, "card", "p-rev", ADMIN)
    assert again["status"] == "already_reversed"
    events = await stack.query_rows(
        "SELECT state FROM service_events WHERE customer_id = %s ORDER BY id", "c-rev")
    assert [e[0] for e in events] == ["suspended", "active", "suspended"]
    audit = await stack.query_rows(
        "SELECT action, actor FROM audit_log WHERE action = 'payment.reverse'")
    assert audit == [("payment.reverse", "test-finance")]
    await record_history(stack.client, customer_workflow_id("c-rev"), "customer_reversal")


async def test_same_payment_by_update_and_signal_at_once_is_applied_once(stack: Stack) -> None:
    await customer(stack, "c-dup")
    await issue(stack, "c-dup", "D-1", "20.00", NOW - timedelta(days=1), NOW + timedelta(days=9))
    payment = PostPaymentInput(processor="card", payment_id="p-dup", amount="20.00",
                               currency="USD")

    def start_op() -> WithStartWorkflowOperation:
        return WithStartWorkflowOperation(
            CustomerWorkflow.run, CustomerWorkflowInput(customer_id="c-dup"),
            id=customer_workflow_id("c-dup"), task_queue=stack.settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)

    async def by_update():
        return await stack.client.execute_update_with_start_workflow(
            CustomerWorkflow.post_payment, payment, start_workflow_operation=start_op(),
            id=payment_update_id("card", "p-dup"))

    async def by_signal():
        await stack.client.start_workflow(
            CustomerWorkflow.run, CustomerWorkflowInput(customer_id="c-dup"),
            id=customer_workflow_id("c-dup"), task_queue=stack.settings.task_queue,
            start_signal="payment_posted", start_signal_args=[payment])

    results = await asyncio.gather(by_update(), by_update(), by_signal(), by_signal())
    assert results[0].status in ("accepted", "duplicate")

    async def settled() -> bool:
        q = await stack.client.get_workflow_handle_for(
            CustomerWorkflow.run, customer_workflow_id("c-dup")).query(CustomerWorkflow.state)
        return q.queued == 0

    await stack.wait_for(settled, what="queued signals processed")
    rows = await stack.query_rows("SELECT count(*) FROM payments WHERE customer_id = %s", "c-dup")
    assert rows == [(1,)]
    assert (await invoices(stack, "c-dup"))["D-1"]["payment_status"] == "paid"


async def test_payment_racing_the_suspension_step_loses_no_resumption(stack: Stack) -> None:
    await customer(stack, "c-race")
    # Past due: its workflow reaches the suspension step at once, while the payment arrives.
    issued = issue(stack, "c-race", "X-1", "30.00", NOW - timedelta(days=30),
                   NOW - timedelta(days=3))
    await issued
    results = await asyncio.gather(pay(stack, "c-race", "p-race", "30.00"),
                                   asyncio.sleep(0))
    assert results[0]["status"] == "accepted"

    async def handled() -> bool:
        rows = await stack.query_rows(
            "SELECT suspension_reached_at IS NOT NULL FROM invoices WHERE customer_id = %s",
            "c-race")
        return rows == [(True,)]

    await stack.wait_for(handled, what="the suspension step")
    await asyncio.sleep(1.0)  # let any late evaluation land
    assert await stack.service_state("c-race") == "active"
    rows = await invoices(stack, "c-race")
    assert rows["X-1"]["payment_status"] == "paid"


async def test_customer_workflow_continues_as_new_and_stays_idempotent(stack: Stack) -> None:
    await customer(stack, "c-can", threshold="0")
    # Started first with a short history: issuing goes through this workflow too.
    handle = await stack.client.start_workflow(
        CustomerWorkflow.run, CustomerWorkflowInput(customer_id="c-can", max_history_events=40),
        id=customer_workflow_id("c-can"), task_queue=stack.settings.task_queue)
    first_run = handle.result_run_id
    await issue(stack, "c-can", "C-1", "100.00", NOW - timedelta(days=1), NOW + timedelta(days=30))
    for n in range(12):
        assert (await pay(stack, "c-can", f"p{n}", "1.00"))["status"] == "accepted"
    # Re-delivery of an early payment after continue-as-new: still one application.
    assert (await pay(stack, "c-can", "p0", "1.00"))["status"] == "duplicate"
    description = await stack.client.get_workflow_handle(customer_workflow_id("c-can")).describe()
    assert description.run_id != first_run
    rows = await invoices(stack, "c-can")
    assert rows["C-1"]["remaining"] == "88.00"
    count = await stack.query_rows("SELECT count(*) FROM payments WHERE customer_id = %s", "c-can")
    assert count == [(12,)]


async def test_issue_time_given_as_a_date_is_midnight_in_the_class_time_zone(
    stack: Stack
) -> None:
    await stack.call(set_class, ClassChange(name="SaoPaulo", currency="BRL", threshold="10.00",
                                            timezone="America/Sao_Paulo"), ADMIN)
    await stack.call(add, NewCustomer(id="c-date", name="Bia", email="bia@example.com",
                                      class_name="SaoPaulo"), ADMIN)
    issued = await stack.call(issue_invoice, IssueRequest(
        customer_id="c-date", number="D-1", charges="20.00", issued="2026-05-01",
        due="2026-05-21"), ADMIN)
    assert (issued["status"], issued["workflow"]) == ("created", "started")
    assert issued["overdue_at"] == "2026-05-22T03:00:00+00:00"
    rows = await stack.query_rows(
        "SELECT issued_at FROM invoices WHERE customer_id = %s", "c-date")
    assert rows == [(datetime(2026, 5, 1, 3, tzinfo=UTC),)]


async def test_service_state_survives_continue_as_new(stack: Stack) -> None:
    await customer(stack, "c-can-state")
    # One evaluation, and the run's first workflow task (4 events in: started, the
    # signal, the task scheduled and started) is already at the limit; the transaction is
    # a local activity, so that task is the run's only one, and nothing wakes it after.
    handle = await stack.client.start_workflow(
        CustomerWorkflow.run,
        CustomerWorkflowInput(customer_id="c-can-state", max_history_events=4),
        id=customer_workflow_id("c-can-state"), task_queue=stack.settings.task_queue,
        start_signal="evaluate_service",
        start_signal_args=[EvaluateService(customer_id="c-can-state", reason="test")])
    first_run = handle.result_run_id

    async def continued() -> bool:
        return (await handle.describe()).run_id != first_run

    await stack.wait_for(continued, what="continue-as-new")
    state = await stack.client.get_workflow_handle_for(
        CustomerWorkflow.run, customer_workflow_id("c-can-state")).query(CustomerWorkflow.state)
    # The new run has not run a transaction yet: what it reports came from the last run
    # (the whole CustomerState is handed over, the last operation included).
    assert (state.last_operation, state.service_state) == ("evaluate_service: test", "active")


async def test_reversal_reopens_a_paid_invoice_and_its_lifecycle_resumes(stack: Stack) -> None:
    await customer(stack, "c-reopen")
    await issue(stack, "c-reopen", "O-1", "50.00", NOW - timedelta(days=1), NOW + timedelta(days=10))
    assert (await pay(stack, "c-reopen", "p-open", "50.00"))["status"] == "accepted"
    first = await stack.client.get_workflow_handle_for(
        InvoiceWorkflow.run, invoice_workflow_id("c-reopen", "O-1")).result()
    assert first.outcome == "paid"
    # The chargeback opens the invoice again: its lifecycle must come back, up to suspension.
    reversed_ = await stack.call(reverse_payment, "card", "p-open", ADMIN)
    assert reversed_["status"] == "reversed"
    await until_state(stack, "c-reopen", "suspended")

    async def suspension_mailed() -> bool:
        # The mail follows the committed state change (SPEC 2.6: mail never delays it).
        return any(kind == "service_suspended"
                   for _, kind, _ in await stack.notifications("c-reopen"))

    await stack.wait_for(suspension_mailed, what="the service_suspended mail")
    kinds = [kind for _, kind, _ in await stack.notifications("c-reopen")]
    assert kinds.count("invoice_issued") == 1  # the reopened run does not announce it again
    assert kinds.count("overdue") == 1 and kinds.count("service_suspended") == 1
    await record_history(stack.client, customer_workflow_id("c-reopen"), "customer_reopen")


async def test_back_dated_invoice_reopens_a_paid_one_and_its_lifecycle(stack: Stack) -> None:
    await customer(stack, "c-back")
    await issue(stack, "c-back", "B-2", "50.00", NOW - timedelta(days=1), NOW + timedelta(days=10))
    assert (await pay(stack, "c-back", "p-back", "50.00"))["status"] == "accepted"
    handle = stack.client.get_workflow_handle_for(
        InvoiceWorkflow.run, invoice_workflow_id("c-back", "B-2"))
    assert (await handle.result()).outcome == "paid"
    # An older invoice arrives late: oldest first, the payment now pays it instead.
    older = await issue(stack, "c-back", "B-1", "50.00", NOW - timedelta(days=5),
                        NOW + timedelta(days=20))
    assert older["payment_status"] == "paid"
    rows = await invoices(stack, "c-back")
    assert (rows["B-2"]["payment_status"], rows["B-2"]["collection_status"]) == (
        "unpaid", "collect")
    # B-2's lifecycle is back: it reaches its suspension time and suspends the service.
    await until_state(stack, "c-back", "suspended")
    events = await stack.query_rows(
        "SELECT causes FROM service_events WHERE customer_id = %s", "c-back")
    assert events == [(["B-2"],)]


async def test_concurrent_payments_across_continue_as_new_are_each_accepted_once(
    stack: Stack
) -> None:
    """40 deliveries at once to a customer whose workflow continues as new every 30
    events: each is answered "accepted" exactly once (a workflow task whose completion the
    server refuses loses its local transactions' markers; the retry under the same update
    id finds the stored result, never "duplicate") and the ledger holds each once."""
    await customer(stack, "c-many", threshold="0")
    handle = await stack.client.start_workflow(
        CustomerWorkflow.run, CustomerWorkflowInput(customer_id="c-many", max_history_events=30),
        id=customer_workflow_id("c-many"), task_queue=stack.settings.task_queue)
    await issue(stack, "c-many", "R-1", "100.00", NOW - timedelta(days=1), NOW + timedelta(days=30))

    async def one(n: int) -> str:
        async with await psycopg.AsyncConnection.connect(stack.settings.database_url,
                                                         autocommit=True) as conn:
            result = await post_payment(
                Context(stack.settings, conn, stack.client), PaymentRequest(
                    processor="card", payment_id=f"r{n}", customer_id="c-many",
                    amount="1.00", currency="USD", received_at=None), None)
        return str(result["status"])

    answers = await asyncio.gather(*(one(n) for n in range(40)))
    assert answers == ["accepted"] * 40

    async def continued() -> bool:
        return (await handle.describe()).run_id != handle.result_run_id

    await stack.wait_for(continued, what="continue-as-new")
    assert (await invoices(stack, "c-many"))["R-1"]["remaining"] == "60.00"
    count = await stack.query_rows(
        "SELECT count(*) FROM payments WHERE customer_id = %s", "c-many")
    assert count == [(40,)]
