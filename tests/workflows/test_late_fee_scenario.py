"""The issue's past-due chain with its late fee, end to end (SPEC 2.9, 2.10): real
PostgreSQL, Temporal (time skipping) and SMTP.

Class: threshold 10.00, late fee 2% after 5d, grace 8d, mon-fri 09:00-18:00,
America/Sao_Paulo. A 20.00 invoice due on a Thursday gets a 0.40 fee five days after D
(remaining 20.40, collect) and its late_fee_charged mail; the service is suspended on
Monday 09:00; a payment of 10.40 leaves 10.00, do_not_collect, and the service resumes at
once; reversing it suspends again at once; finance waives the fee: remaining 20.00,
exactly as if it had never been charged, still collect, so the service stays suspended.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from db.customers import NewCustomer
from domain.ids import customer_workflow_id, invoice_workflow_id
from operations.classes import ClassChange, set_class
from operations.customers import add
from operations.fees import waive_fee
from operations.invoices import IssueRequest, issue_invoice
from operations.payments import PaymentRequest, post_payment, reverse_payment
from operations.status import customer_status
from tests.support.histories import record_history
from tests.support.stack import ADMIN, Stack
from workflows.collection.invoice import InvoiceWorkflow

ZONE = "America/Sao_Paulo"
CUSTOMER = "c-latefee"


def local(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=ZoneInfo(ZONE)).astimezone(UTC)


async def test_fee_suspension_payment_and_waiver(stack: Stack, smtp_sink) -> None:
    await stack.call(set_class, ClassChange(
        name="EasyCall", currency="BRL", threshold="10.00", timezone=ZONE, grace="8d",
        late_fee="2%", late_fee_after="5d", terminate_after="30d", working_days="mon-fri",
        working_hours="09:00-18:00", from_name="EasyCall",
        from_address="no-reply@easycall.com"), ADMIN)
    await stack.call(add, NewCustomer(id=CUSTOMER, name="Ana", email="ana@example.com",
                                      class_name="EasyCall"), ADMIN)
    today = datetime.now(UTC).astimezone(ZoneInfo(ZONE)).date()
    due = today + timedelta(days=7)
    due += timedelta(days=(3 - due.weekday()) % 7)  # a Thursday at least a week ahead
    issued = await stack.call(issue_invoice, IssueRequest(
        customer_id=CUSTOMER, number="INV-06", charges="20.00",
        issued=datetime.now(UTC).replace(microsecond=0).isoformat(), due=due.isoformat()),
        ADMIN)
    assert (issued["amount_due"], issued["collection_status"]) == ("20.00", "collect")

    async def suspended() -> bool:
        return await stack.service_state(CUSTOMER) == "suspended"

    await stack.wait_for(suspended, timeout=90, what="the suspension on Monday 09:00")
    fees = await stack.query_rows(
        "SELECT f.amount, f.charged_at, f.waived_at FROM late_fees f WHERE customer_id = %s",
        CUSTOMER)
    assert len(fees) == 1 and fees[0][0] == 40 and fees[0][2] is None
    fee_at = local(due + timedelta(days=1), 0) + timedelta(days=5)  # D + 5d
    assert timedelta(0) <= fees[0][1] - fee_at < timedelta(minutes=1)
    reached = await stack.query_rows(
        "SELECT suspension_reached_at, remaining, fees, collection_status FROM invoices"
        " WHERE customer_id = %s", CUSTOMER)
    assert reached[0][1:] == (2040, 40, "collect")
    assert timedelta(0) <= reached[0][0] - local(due + timedelta(days=11), 9) \
        < timedelta(minutes=1)

    paid = await stack.call(post_payment, PaymentRequest(
        processor="card", payment_id="pay-1040", customer_id=CUSTOMER, amount="10.40",
        currency="BRL", received_at=None), None)
    assert (paid["status"], paid["service_state"], paid["balance"]) == (
        "accepted", "active", "10.00")
    status = await stack.call(customer_status, CUSTOMER, audit=None)
    assert {k: status["invoices"][0][k] for k in ("remaining", "collection_status",
                                                  "late_fee")} == {
        "remaining": "10.00", "collection_status": "do_not_collect", "late_fee": "0.40"}

    # Reversing that payment suspends the service again at once (S' has passed).
    reversed_ = await stack.call(reverse_payment, "card", "pay-1040", ADMIN)
    assert (reversed_["status"], reversed_["service_state"]) == ("reversed", "suspended")

    # Waiving the fee: 20.00 remains, still collect, so the service stays suspended.
    waived = await stack.call(waive_fee, CUSTOMER, "INV-06", ADMIN)
    assert waived == {"status": "waived", "customer_id": CUSTOMER, "invoice": "INV-06",
                      "fee": "0.40", "currency": "BRL", "balance": "20.00",
                      "service_state": "suspended"}
    again = await stack.call(waive_fee, CUSTOMER, "INV-06", ADMIN)
    assert again["status"] == "already_waived" and again["balance"] == "20.00"
    status = await stack.call(customer_status, CUSTOMER, audit=None)
    assert (status["invoices"][0]["remaining"], status["invoices"][0]["late_fee"]) == (
        "20.00", None)
    audit = await stack.query_rows(
        "SELECT actor, action FROM audit_log WHERE target = %s", f"invoice:{CUSTOMER}/INV-06")
    assert ("test-finance", "fee.waive") in audit

    expected = sorted(["invoice_issued", "due_reminder", "overdue", "late_fee_charged",
                       "suspension_warning", "service_suspended", "payment_received",
                       "service_resumed", "service_suspended"])

    async def all_sent() -> bool:
        rows = await stack.notifications(CUSTOMER)
        return (sorted(k for _, k, _ in rows) == expected
                and all(s == "sent" for *_, s in rows)
                and len(smtp_sink.to("ana@example.com")) == len(expected))

    await stack.wait_for(all_sent, what="every mail of the chain")
    fee_mail = next(m for m in smtp_sink.to("ana@example.com")
                    if m["X-Dunning-Kind"] == "late_fee_charged")
    assert fee_mail["Subject"] == "A late fee of R$0.40 was added to invoice INV-06"
    assert "Outstanding now:    R$20.40" in fee_mail.get_body(("plain",)).get_content()

    handle = stack.client.get_workflow_handle_for(
        InvoiceWorkflow.run, invoice_workflow_id(CUSTOMER, "INV-06"))
    query = await handle.query(InvoiceWorkflow.status)
    assert query.steps["late_fee"] == "requested"
    assert query.steps["suspension"] == "reached"
    await record_history(stack.client, invoice_workflow_id(CUSTOMER, "INV-06"),
                         "invoice_late_fee")
    await record_history(stack.client, customer_workflow_id(CUSTOMER), "customer_late_fee")
