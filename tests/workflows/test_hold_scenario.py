"""The issue's hold, end to end (SPEC 2.11): real PostgreSQL, Temporal (time skipping) and
SMTP. A suspended customer put on hold with --resume resumes at once (reason "hold"), its
invoice's workflow says its steps are held; releasing it suspends again at once; a hold
with --until placed with --resume is ended by the customer's workflow's timer, and the
suspension that is due happens then."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from db.customers import NewCustomer
from domain.ids import customer_workflow_id, invoice_workflow_id
from operations.classes import ClassChange, set_class
from operations.customers import add
from operations.holds import place_hold, release_hold
from operations.invoices import IssueRequest, issue_invoice
from operations.status import customer_status
from tests.support.histories import record_history
from tests.support.stack import ADMIN, Stack
from workflows.collection.invoice import InvoiceWorkflow
from workflows.ledger.customer import CustomerWorkflow

CUSTOMER = "c-hold"


async def test_resume_release_and_a_hold_ended_by_its_until(stack: Stack, smtp_sink) -> None:
    await stack.call(set_class, ClassChange(
        name="Holdings", currency="USD", threshold="10.00", grace="2d",
        from_name="Holdings", from_address="no-reply@holdings.test"), ADMIN)
    await stack.call(add, NewCustomer(id=CUSTOMER, name="Ana", email="ana@hold.test",
                                      class_name="Holdings"), ADMIN)
    now = datetime.now(UTC).replace(microsecond=0)
    await stack.call(issue_invoice, IssueRequest(
        customer_id=CUSTOMER, number="INV-06", charges="20.00", issued=now.isoformat(),
        due=(now + timedelta(days=5)).isoformat()), ADMIN)

    async def state_is(wanted: str):
        async def check() -> bool:
            return await stack.service_state(CUSTOMER) == wanted
        return check

    await stack.wait_for(await state_is("suspended"), timeout=90, what="the suspension")

    held = await stack.call(place_hold, CUSTOMER, ADMIN, resume=True)
    assert (held["status"], held["service_state"]) == ("placed", "active")
    status = await stack.call(customer_status, CUSTOMER, audit=None)
    assert status["hold"]["reason"] == "test" and status["hold"]["until"] is None
    assert status["hold"]["actor"] == "test-finance"
    invoice = stack.client.get_workflow_handle_for(
        InvoiceWorkflow.run, invoice_workflow_id(CUSTOMER, "INV-06"))

    async def invoice_knows() -> bool:
        return (await invoice.query(InvoiceWorkflow.status)).hold is not None

    await stack.wait_for(invoice_knows, what="the invoice hears of the hold")
    query = await invoice.query(InvoiceWorkflow.status)
    assert query.hold is not None and "customer on hold until released (test" in query.hold
    assert "steps held" in query.reason

    released = await stack.call(release_hold, CUSTOMER, ADMIN)
    assert (released["status"], released["service_state"], released["hold"]) == (
        "released", "suspended", None)

    # A hold until a time, placed with --resume: the customer's timer ends it.
    until = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    again = await stack.call(place_hold, CUSTOMER, ADMIN, until=until.isoformat(),
                             resume=True)
    assert (again["service_state"], again["hold"]["until"]) == ("active", until.isoformat())
    customer = stack.client.get_workflow_handle_for(CustomerWorkflow.run,
                                                    customer_workflow_id(CUSTOMER))

    async def hold_ended() -> bool:
        rows = await stack.query_rows(
            "SELECT hold_placed_at, service_state FROM customers WHERE id = %s", CUSTOMER)
        return rows[0] == (None, "suspended")

    await stack.wait_for(hold_ended, timeout=60, what="the hold's end at its until")
    events = await stack.query_rows(
        "SELECT state, reason, occurred_at FROM service_events WHERE customer_id = %s"
        " ORDER BY id", CUSTOMER)
    assert [(s, r) for s, r, _ in events][1:] == [
        ("active", "hold"), ("suspended", "hold released"), ("active", "hold"),
        ("suspended", "hold ended")]
    assert events[-1][2] >= until  # at the hold's end, not before
    state = await customer.query(CustomerWorkflow.state)
    assert (state.on_hold, state.hold_until) == (False, None)
    audit = await stack.query_rows(
        "SELECT action FROM audit_log WHERE target = %s ORDER BY id", f"customer:{CUSTOMER}")
    assert [a for (a,) in audit if a.startswith("customer.hold")] == [
        "customer.hold", "customer.hold_release", "customer.hold"]

    expected = sorted(["invoice_issued", "due_reminder", "overdue", "suspension_warning",
                       "service_suspended", "service_resumed", "service_suspended",
                       "service_resumed", "service_suspended"])

    async def all_sent() -> bool:
        rows = await stack.notifications(CUSTOMER)
        return (sorted(k for _, k, _ in rows) == expected
                and all(s == "sent" for *_, s in rows))

    await stack.wait_for(all_sent, what="every mail of the hold story")
    await record_history(stack.client, invoice_workflow_id(CUSTOMER, "INV-06"), "invoice_hold")
    await record_history(stack.client, customer_workflow_id(CUSTOMER), "customer_hold")
