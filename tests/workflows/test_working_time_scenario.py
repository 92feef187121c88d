"""Working time end to end (SPEC 2.10): real PostgreSQL, Temporal (time skipping) and SMTP.

The issue's class: America/Sao_Paulo, mon-fri 09:00-18:00, grace 8d. An invoice due on a
Thursday is overdue from Friday 00:00 (D, never moved); S = D + 8d is a Saturday, so the
service is suspended on Monday at 09:00 local, the warning mail (1d before Monday 09:00
is a Sunday) goes on the Friday before at 09:00 and says Monday; the status document shows
the moved suspension and why.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from activities.notifications.render import format_day
from db.customers import NewCustomer
from domain.ids import invoice_workflow_id
from operations.classes import ClassChange, set_class
from operations.customers import add
from operations.invoices import IssueRequest, issue_invoice
from operations.status import customer_status
from tests.support.stack import ADMIN, Stack
from workflows.collection.invoice import InvoiceWorkflow

ZONE = "America/Sao_Paulo"
CUSTOMER = "c-workweek"


def local(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=ZoneInfo(ZONE)).astimezone(UTC)


async def test_suspension_waits_for_monday_and_the_warning_goes_on_friday(
        stack: Stack, smtp_sink) -> None:
    await stack.call(set_class, ClassChange(
        name="WorkWeek", currency="BRL", threshold="10.00", timezone=ZONE, reminders="3d",
        grace="8d", warning="1d", working_days="mon-fri", working_hours="09:00-18:00"), ADMIN)
    await stack.call(add, NewCustomer(id=CUSTOMER, name="Ana", email="ana@example.com",
                                      class_name="WorkWeek"), ADMIN)
    today = datetime.now(UTC).astimezone(ZoneInfo(ZONE)).date()
    due = today + timedelta(days=7)
    due += timedelta(days=(3 - due.weekday()) % 7)  # a Thursday at least a week ahead
    issued = await stack.call(issue_invoice, IssueRequest(
        customer_id=CUSTOMER, number="INV-06", charges="20.00",
        issued=datetime.now(UTC).replace(microsecond=0).isoformat(), due=due.isoformat()),
        ADMIN)
    monday, saturday = due + timedelta(days=11), due + timedelta(days=9)
    assert issued["overdue_at"] == local(due + timedelta(days=1), 0).isoformat()  # D: Friday
    assert issued["suspend_at"] == local(monday, 9).isoformat()  # S'

    async def suspended() -> bool:
        return await stack.service_state(CUSTOMER) == "suspended"

    await stack.wait_for(suspended, timeout=90, what="the suspension on Monday 09:00")
    reached = await stack.query_rows(
        "SELECT suspension_reached_at FROM invoices WHERE customer_id = %s", CUSTOMER)
    assert timedelta(0) <= reached[0][0] - local(monday, 9) < timedelta(minutes=1)

    status = await stack.call(customer_status, CUSTOMER, audit=None)
    invoice = status["invoices"][0]
    assert invoice["suspension_at"] == local(monday, 9).isoformat()
    assert invoice["suspension_moved"] == {
        "from": local(saturday, 0).isoformat(),
        "why": f"S Saturday {saturday} 00:00 is outside working days mon-fri; moved to the "
               f"next start of working time, Monday {monday} 09:00"}

    expected = ["invoice_issued", "due_reminder", "overdue", "suspension_warning",
                "service_suspended"]

    async def all_sent() -> bool:
        rows = await stack.notifications(CUSTOMER)
        return (sorted(k for _, k, _ in rows) == sorted(expected)
                and all(s == "sent" for *_, s in rows)
                and len(smtp_sink.to("ana@example.com")) == len(expected))

    await stack.wait_for(all_sent, what="every mail of the invoice")
    warning = next(m for m in smtp_sink.to("ana@example.com")
                   if m["X-Dunning-Kind"] == "suspension_warning")
    text = warning.get_body(("plain",)).get_content()
    assert f"will be suspended on {format_day(monday, 'en')}" in text

    handle = stack.client.get_workflow_handle_for(
        InvoiceWorkflow.run, invoice_workflow_id(CUSTOMER, "INV-06"))
    query = await handle.query(InvoiceWorkflow.status)
    assert query.steps == {"due_reminder:3d": "sent", "overdue": "sent",
                           "suspension_warning": "sent", "suspension": "reached"}
    assert query.moved["suspension"] == invoice["suspension_moved"]["why"]
    assert query.moved["suspension_warning"] == (
        f"due 1d before S' at Sunday {monday - timedelta(days=1)} 09:00, which is outside "
        "working days mon-fri; moved to the start of the last working period before it, "
        f"Friday {due + timedelta(days=8)} 09:00")
