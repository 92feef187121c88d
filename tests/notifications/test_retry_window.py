"""SPEC 2.6: a mail still undelivered when its retry window (3 days) ends becomes `failed`
with its last error, not `pending` forever. Real Temporal (time skipping), PostgreSQL and
an aiosmtpd server that always answers 451."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from temporalio import activity, workflow
from temporalio.exceptions import ApplicationError

from activities.notifications import outbox
from activities.notifications.errors import TransientMailError
from activities.notifications.mailer import SmtpConfig, SmtpMailer
from activities.notifications.message import Sender
from activities.notifications.send import MailActivities
from db.customers import NewCustomer
from db.pool import open_pool
from operations.classes import ClassChange, set_class
from operations.customers import add
from operations.invoices import IssueRequest, issue_invoice
from tests.notifications.test_outbox import draft
from tests.support.stack import ADMIN, running_stack
from tests.support.workers import workers
from workflows import policies
from workflows.notifications import notify
from workflows.notifications.payloads import (
    EXPIRE_NOTIFICATION,
    SEND_NOTIFICATION,
    SendNotificationInput,
    SendNotificationResult,
)

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


# --- the workflow's fallback: the window ends the activity itself (SPEC 2.6) -------------
#
# The send activity marks the mail `failed` itself when its next retry would fall past the
# window; these cases take that chance away (an attempt that hangs, as with a worker that is
# down when the window ends, or attempts that never get to look), so the row is settled
# only if notify.deliver runs the expire_notification activity after the timeout.


@workflow.defn(sandboxed=False)
class DeliverOne:
    @workflow.run
    async def run(self, notification: SendNotificationInput) -> None:
        await notify.deliver(notification)


class Hanging:
    """A mailer that never answers (the claim is committed, then nothing)."""

    async def send(self, message):
        await asyncio.sleep(3600)


@pytest.mark.parametrize(
    ("case", "window", "expected"),
    [
        # 451 on attempt 1, then an attempt that hangs past the window: TimeoutError.
        ("hang_after_451", timedelta(seconds=8), ("failed", GREYLISTED)),
        # Claimed, then the SMTP exchange hangs past the window: outcome unknown.
        ("hang_while_sending", timedelta(seconds=3), ("unknown", None)),
        # 451 every attempt, never marked by the attempt: the server stops retrying
        # (retry state TIMEOUT, the cause is the last attempt's error).
        ("451_every_attempt", timedelta(seconds=5), ("failed", GREYLISTED)),
    ],
)
async def test_when_the_window_ends_the_activity_the_workflow_marks_the_mail(
    temporal_env, database_url, conn, scripted_smtp, monkeypatch, case, window, expected
):
    monkeypatch.setattr(policies, "MAIL_SCHEDULE_TO_CLOSE", window)
    scripted_smtp.data_replies = [GREYLISTED] * 100
    key = "inv:c1:INV-06:overdue"
    pool = open_pool(database_url)
    await pool.open(wait=True)
    smtp = SmtpMailer(SmtpConfig(host=scripted_smtp.host, port=scripted_smtp.port))
    mail = MailActivities(pool, smtp, Sender("billing@dunning.test", "Dunning Billing"))
    attempts: list[int] = []

    @activity.defn(name=SEND_NOTIFICATION)
    async def send_notification(input: SendNotificationInput) -> SendNotificationResult:
        attempt = activity.info().attempt
        attempts.append(attempt)
        if attempt == 1:
            await outbox.record(conn, draft(key))
        if case == "hang_after_451" and attempt > 1:
            await asyncio.sleep(3600)
        try:
            await outbox.deliver(pool, key, Hanging() if case == "hang_while_sending" else smtp)
        except TransientMailError as err:
            raise ApplicationError(str(err), type="TransientMailError") from None
        raise AssertionError("the server answers 451 to every message")

    queue = f"expire-{uuid.uuid4().hex[:8]}"
    try:
        async with workers(temporal_env.client, task_queue=queue, workflows=[DeliverOne],
                          activities=[send_notification, mail.expire_notification]):
            handle = await temporal_env.client.start_workflow(
                DeliverOne.run,
                SendNotificationInput(key=key, kind="overdue", customer_id="c1"),
                id=f"deliver-{queue}", task_queue=queue)
            await asyncio.wait_for(handle.result(), timeout=120)
            history = await handle.fetch_history()
    finally:
        await smtp.close()
        await pool.close()
    row = await outbox.get(conn, key)
    status, error = expected
    assert row.status == status, (row.status, row.last_error, attempts)
    if error is not None:
        assert row.last_error == error
    else:
        assert row.last_error.startswith("outcome unknown: retry window")
    assert scripted_smtp.messages == []
    scheduled = [e.activity_task_scheduled_event_attributes.activity_type.name
                 for e in history.events if e.HasField("activity_task_scheduled_event_attributes")]
    assert scheduled == [SEND_NOTIFICATION, EXPIRE_NOTIFICATION]
    ended = {e.WhichOneof("attributes") for e in history.events} & {
        "activity_task_timed_out_event_attributes", "activity_task_failed_event_attributes"}
    assert ended == {"activity_task_failed_event_attributes" if case == "451_every_attempt"
                     else "activity_task_timed_out_event_attributes"}
    markers = [e.marker_recorded_event_attributes.marker_name
               for e in history.events if e.HasField("marker_recorded_event_attributes")]
    assert markers  # the patch marker: histories without it replay without the fallback
