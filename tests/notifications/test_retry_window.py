"""SPEC 2.6: a mail still undelivered when its retry window (3 days) ends becomes `failed`
with its last error, not `pending` forever. Real Temporal (time skipping), PostgreSQL and
an aiosmtpd server that always answers 451."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from db.customers import NewCustomer
from operations.classes import ClassChange, set_class
from operations.customers import add
from operations.invoices import IssueRequest, issue_invoice
from tests.support.stack import ADMIN, running_stack
from workflows import policies

GREYLISTED = "451 4.7.1 Greylisted, please try again later"


async def test_a_mail_refused_with_451_until_its_window_ends_is_failed_with_the_reply(
    temporal_env, database_url, scripted_smtp, monkeypatch
):
    # The 3-day window is ~440 attempts, about one per real second under time skipping;
    # a 1-hour window takes the same path (activity schedule-to-close) in ~15 attempts.
    monkeypatch.setattr(policies, "MAIL_SCHEDULE_TO_CLOSE", timedelta(hours=1))
    scripted_smtp.data_replies = [GREYLISTED] * 1000
    async with running_stack(temporal_env, database_url, scripted_smtp.host,
                             scripted_smtp.port) as stack:
        await stack.call(set_class, ClassChange(
            name="Residential", currency="USD", threshold="10.00",
            from_address="billing@residential.test"), ADMIN)
        await stack.call(add, NewCustomer(id="c-451", name="Greylisted Customer",
                                          email="c451@example.com", class_name="Residential"),
                         ADMIN)
        now = datetime.now(UTC)
        await stack.call(issue_invoice, IssueRequest(
            customer_id="c-451", number="INV-1", charges="20.00", issued=now.isoformat(),
            due=(now + timedelta(days=60)).isoformat()), ADMIN)

        async def row() -> tuple | None:
            rows = await stack.query_rows(
                "SELECT status, attempts, last_error FROM notifications"
                " WHERE customer_id = 'c-451' AND kind = 'invoice_issued'")
            return rows[0] if rows else None

        async def settled() -> bool:
            found = await row()
            return found is not None and found[0] in ("sent", "failed", "unknown")

        await stack.wait_for(settled, timeout=240, what="the mail to settle")
        status, attempts, last_error = await row()
    assert (status, last_error) == ("failed", GREYLISTED)
    # Retried through the window: 2 s doubling to 10 min, then every 10 min, for 1 hour.
    assert attempts >= 10, attempts
    assert scripted_smtp.messages == []
