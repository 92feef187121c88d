"""One activity for the mails of one outcome (issue 11): each mail is still recorded and
sent at most once by its own key, a permanent failure of one does not stop the others, and
a transient one fails the attempt after the others went out, so the retry sends only what
is left. Real PostgreSQL and aiosmtpd (the scripted server), the real activity."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from psycopg_pool import AsyncConnectionPool
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.notifications.send import MailActivities
from tests.notifications.test_outbox import COMPANY
from workflows.notifications.payloads import SendNotificationInput, SendNotificationsInput
from workflows.policies import MAIL_SCHEDULE_TO_CLOSE, MAIL_TIMEOUT

AT = datetime(2026, 6, 20, 12, tzinfo=UTC)


def mails(*customers: str) -> SendNotificationsInput:
    return SendNotificationsInput(notifications=[
        SendNotificationInput(key=f"svc:{c}:1:service_resumed", kind="service_resumed",
                              customer_id=c, at=AT) for c in customers])


@pytest.fixture
async def activities(conn, database_url, mailer):
    async with AsyncConnectionPool(database_url, min_size=1, max_size=2, open=False) as pool:
        yield MailActivities(pool, mailer, COMPANY)


async def statuses(conn) -> dict[str, str]:
    cur = await conn.execute("SELECT customer_id, status FROM notifications")
    return dict(await cur.fetchall())


async def test_every_mail_of_the_batch_is_sent_once(conn, activities, scripted_smtp) -> None:
    env = ActivityEnvironment()
    first = await env.run(activities.send_notifications, mails("c1", "c2"))
    again = await env.run(activities.send_notifications, mails("c1", "c2"))  # a retry
    assert [r.status for r in first.results] == ["sent", "sent"]
    assert [r.status for r in again.results] == ["already_sent", "already_sent"]
    assert sorted(m["To"] for m in scripted_smtp.messages) == [
        "Ana Souza <ana@example.net>", "João Conceição <joao@example.net>"]
    assert await statuses(conn) == {"c1": "sent", "c2": "sent"}


async def test_a_refused_recipient_fails_alone(conn, activities, scripted_smtp) -> None:
    scripted_smtp.rcpt_replies["ana@example.net"] = "550 5.1.1 User unknown"
    result = await ActivityEnvironment().run(activities.send_notifications,
                                             mails("c1", "c2"))
    assert [(r.key, r.status) for r in result.results] == [
        ("svc:c1:1:service_resumed", "failed"), ("svc:c2:1:service_resumed", "sent")]
    assert "550 5.1.1 User unknown" in (result.results[0].error or "")
    assert await statuses(conn) == {"c1": "failed", "c2": "sent"}


async def test_a_transient_failure_retries_only_what_is_left(conn, activities,
                                                             scripted_smtp) -> None:
    scripted_smtp.data_replies = ["451 4.7.1 Greylisted, try again later"]
    env = ActivityEnvironment()
    # An attempt well inside the mail's 3-day retry window (the test default is 1 s).
    env.info = replace(env.info, schedule_to_close_timeout=MAIL_SCHEDULE_TO_CLOSE,
                       start_to_close_timeout=MAIL_TIMEOUT)
    with pytest.raises(ApplicationError) as refused:
        await env.run(activities.send_notifications, mails("c1", "c2"))
    assert refused.value.type == "TransientMailError"
    assert await statuses(conn) == {"c1": "pending", "c2": "sent"}  # c2 went out meanwhile
    result = await env.run(activities.send_notifications, mails("c1", "c2"))
    assert [r.status for r in result.results] == ["sent", "already_sent"]
    assert scripted_smtp.data_commands == 3 and len(scripted_smtp.messages) == 2
