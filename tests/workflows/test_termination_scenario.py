"""Termination end to end (SPEC 2.9): real PostgreSQL, Temporal (time skipping) and SMTP.
A class terminating after 30d: the customer is suspended at S, terminated 30 days later
(service_terminated, its invoice's workflow ends); a payment is still applied but the
service stays terminated; finance reactivates it and SPEC 2.4 applies again (paid:
active)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from db.customers import NewCustomer
from domain.ids import customer_workflow_id, invoice_workflow_id
from operations.classes import ClassChange, set_class
from operations.customers import add
from operations.holds import reactivate
from operations.invoices import IssueRequest, issue_invoice
from operations.payments import PaymentRequest, post_payment
from tests.support.histories import record_history
from tests.support.stack import ADMIN, Stack
from workflows.collection.invoice import InvoiceWorkflow

CUSTOMER = "c-terminated"


async def test_terminated_thirty_days_after_suspension_then_reactivated(
        stack: Stack, smtp_sink) -> None:
    await stack.call(set_class, ClassChange(
        name="Ending", currency="USD", threshold="10.00", grace="1d", terminate_after="30d",
        from_name="Ending", from_address="no-reply@ending.test"), ADMIN)
    await stack.call(add, NewCustomer(id=CUSTOMER, name="Ana", email="ana@ending.test",
                                      class_name="Ending"), ADMIN)
    now = datetime.now(UTC).replace(microsecond=0)
    await stack.call(issue_invoice, IssueRequest(
        customer_id=CUSTOMER, number="INV-06", charges="20.00", issued=now.isoformat(),
        due=(now + timedelta(days=4)).isoformat()), ADMIN)

    async def terminated() -> bool:
        return await stack.service_state(CUSTOMER) == "terminated"

    await stack.wait_for(terminated, timeout=120, what="the termination 30 days after S")
    events = await stack.query_rows(
        "SELECT state, occurred_at FROM service_events WHERE customer_id = %s ORDER BY id",
        CUSTOMER)
    assert [s for s, _ in events] == ["suspended", "terminated"]
    assert events[1][1] - events[0][1] >= timedelta(days=30)
    assert events[1][1] - events[0][1] < timedelta(days=30, minutes=5)
    invoice = stack.client.get_workflow_handle_for(
        InvoiceWorkflow.run, invoice_workflow_id(CUSTOMER, "INV-06"))
    assert (await invoice.result()).outcome == "terminated"

    paid = await stack.call(post_payment, PaymentRequest(
        processor="card", payment_id="pay-20", customer_id=CUSTOMER, amount="20.00",
        currency="USD", received_at=None), None)
    assert (paid["status"], paid["service_state"], paid["balance"]) == (
        "accepted", "terminated", "0.00")

    back = await stack.call(reactivate, CUSTOMER, ADMIN)
    assert (back["status"], back["service_state"]) == ("reactivated", "active")
    audit = await stack.query_rows(
        "SELECT actor, action FROM audit_log WHERE target = %s", f"customer:{CUSTOMER}")
    assert ("test-finance", "customer.reactivate") in audit

    expected = sorted(["invoice_issued", "due_reminder", "overdue", "suspension_warning",
                       "service_suspended", "service_terminated", "payment_received",
                       "service_resumed"])

    async def all_sent() -> bool:
        rows = await stack.notifications(CUSTOMER)
        return (sorted(k for _, k, _ in rows) == expected
                and all(s == "sent" for *_, s in rows)
                and len(smtp_sink.to("ana@ending.test")) == len(expected))

    await stack.wait_for(all_sent, what="every mail, service_terminated included")
    mail = next(m for m in smtp_sink.to("ana@ending.test")
                if m["X-Dunning-Kind"] == "service_terminated")
    assert mail["Subject"] == "Your Ending service has been terminated"
    await record_history(stack.client, invoice_workflow_id(CUSTOMER, "INV-06"),
                         "invoice_terminated")
    await record_history(stack.client, customer_workflow_id(CUSTOMER), "customer_terminated")
