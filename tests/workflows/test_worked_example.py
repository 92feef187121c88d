"""SPEC 5, end to end: real PostgreSQL, Temporal (time skipping) and SMTP, exact figures.

Class threshold $10.00. May: charges 10.00, amount due 10.00 -> do_not_collect, the
customer keeps service. June: charges 10.00, amount due 20.00 -> collect; due reminder,
overdue notice, suspension. Then $15.00: May paid, June remaining 5.00 -> do_not_collect;
service resumes at once; payment_received and service_resumed. Every mail carries the
class's From and Reply-To.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from db.customers import NewCustomer
from domain.ids import customer_workflow_id, invoice_workflow_id
from operations.classes import ClassChange, set_class
from operations.customers import add
from operations.invoices import IssueRequest, issue_invoice
from operations.payments import PaymentRequest, post_payment
from operations.status import customer_status
from tests.support.histories import record_history
from tests.support.stack import ADMIN, Stack
from workflows.collection.invoice import InvoiceWorkflow

CUSTOMER = "c-spec5"


async def setup_customer(stack: Stack) -> None:
    await stack.call(set_class, ClassChange(
        name="EasyCall", currency="USD", threshold="10.00", from_name="EasyCall",
        from_address="no-reply@easycall.com", reply_to="support@easycall.com",
        reminders="3d", grace="5d", warning="1d"), ADMIN)
    await stack.call(add, NewCustomer(id=CUSTOMER, name="Ana Example", email="ana@example.com",
                                      class_name="EasyCall"), ADMIN)


async def test_worked_example_end_to_end(stack: Stack, smtp_sink) -> None:
    t0 = datetime.now(UTC).replace(microsecond=0)
    await setup_customer(stack)

    # May: issued 40 days ago, due 10 days ago (entered late), its card payment failed.
    may = await stack.call(issue_invoice, IssueRequest(
        customer_id=CUSTOMER, number="INV-05", charges="10.00",
        issued=(t0 - timedelta(days=40)).isoformat(),
        due=(t0 - timedelta(days=10)).date().isoformat()), ADMIN)
    assert (may["amount_due"], may["remaining"]) == ("10.00", "10.00")
    assert may["collection_status"] == "do_not_collect"  # 10 does not exceed 10

    # June: issued now, due in ten days.
    june = await stack.call(issue_invoice, IssueRequest(
        customer_id=CUSTOMER, number="INV-06", charges="10.00", issued=t0.isoformat(),
        due=(t0 + timedelta(days=10)).isoformat()), ADMIN)
    assert (june["previous_balance"], june["amount_due"], june["remaining"]) == (
        "10.00", "20.00", "20.00")
    assert june["collection_status"] == "collect"

    # June's workflow sleeps through reminder, overdue notice and warning to its suspension.
    async def suspended() -> bool:
        return await stack.service_state(CUSTOMER) == "suspended"

    await stack.wait_for(suspended, timeout=90, what="the suspension after June's due date")
    events = await stack.query_rows(
        "SELECT state, causes FROM service_events WHERE customer_id = %s ORDER BY id", CUSTOMER)
    assert events == [("suspended", ["INV-06"])]  # May never causes a suspension

    # After suspension the customer pays $15.00.
    paid = await stack.call(post_payment, PaymentRequest(
        processor="card", payment_id="pay-15", customer_id=CUSTOMER, amount="15.00",
        currency="USD", received_at=None), None)
    assert paid["status"] == "accepted"
    assert paid["service_state"] == "active"  # resumed by the payment's own transaction
    assert paid["balance"] == "5.00"

    status = await stack.call(customer_status, CUSTOMER, audit=None)
    assert status["service_state"] == "active"
    assert status["balance"] == "5.00"
    by_number = {i["number"]: i for i in status["invoices"]}
    assert {k: by_number["INV-05"][k] for k in
            ("amount_due", "remaining", "payment_status")} == {
        "amount_due": "10.00", "remaining": "0.00", "payment_status": "paid"}
    assert {k: by_number["INV-06"][k] for k in
            ("amount_due", "remaining", "collection_status", "payment_status")} == {
        "amount_due": "20.00", "remaining": "5.00", "collection_status": "do_not_collect",
        "payment_status": "partially_paid"}
    events = await stack.query_rows(
        "SELECT state, causes FROM service_events WHERE customer_id = %s ORDER BY id", CUSTOMER)
    assert events == [("suspended", ["INV-06"]), ("active", [])]

    # May's workflow ends (paid); June's goes on waiting, re-evaluated at once.
    may_result = await stack.client.get_workflow_handle_for(
        InvoiceWorkflow.run, invoice_workflow_id(CUSTOMER, "INV-05")).result()
    assert may_result.outcome == "paid"
    june_handle = stack.client.get_workflow_handle_for(
        InvoiceWorkflow.run, invoice_workflow_id(CUSTOMER, "INV-06"))

    async def june_reevaluated() -> bool:
        q = await june_handle.query(InvoiceWorkflow.status)
        return q.remaining == 500 and q.collection_status == "do_not_collect"

    await stack.wait_for(june_reevaluated, what="June's workflow to see the payment")

    # The exact set of mails, all sent, all from the class's sender.
    expected = {
        ("invoice_issued", "INV-05"), ("invoice_issued", "INV-06"),
        ("due_reminder", "INV-06"), ("overdue", "INV-06"), ("suspension_warning", "INV-06"),
        ("service_suspended", None), ("payment_received", None), ("service_resumed", None),
    }

    async def all_sent() -> bool:
        rows = await stack.query_rows(
            "SELECT kind, invoice_number, status FROM notifications WHERE customer_id = %s",
            CUSTOMER)
        kinds = {(k, n if k not in ("service_suspended", "service_resumed",
                                    "payment_received") else None) for k, n, _ in rows}
        return kinds == expected and all(s == "sent" for _, _, s in rows) \
            and len(smtp_sink.to("ana@example.com")) == len(expected)

    await stack.wait_for(all_sent, what="every notification of the worked example")
    messages = smtp_sink.to("ana@example.com")
    assert len(messages) == 8
    for message in messages:
        assert message["From"].addresses[0].display_name == "EasyCall"
        assert message["From"].addresses[0].addr_spec == "no-reply@easycall.com"
        assert str(message["Reply-To"]) == "support@easycall.com"
    # No reminder or overdue mail for May.
    rows = await stack.query_rows(
        "SELECT kind FROM notifications WHERE customer_id = %s AND invoice_number = 'INV-05'",
        CUSTOMER)
    assert [r[0] for r in rows] == ["invoice_issued"]
    await record_history(stack.client, invoice_workflow_id(CUSTOMER, "INV-06"),
                         "worked_example_june")
    await record_history(stack.client, invoice_workflow_id(CUSTOMER, "INV-05"),
                         "worked_example_may")
    await record_history(stack.client, customer_workflow_id(CUSTOMER), "worked_example_customer")
