"""At most once across crashes (SPEC 2.6): claim, send with nothing held, record; an
attempt that finds someone else's expired claim marks the row ``unknown`` and never sends.
Real PostgreSQL and aiosmtpd; the faults (a crash, a database cut) are injected around a
real SmtpMailer, never instead of it."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from activities.notifications import outbox
from activities.notifications.errors import HeaderInjectionError, TransientMailError
from activities.notifications.mailer import SendReceipt, SmtpMailer
from activities.notifications.message import Sender, build_message
from tests.notifications.test_outbox import draft

KEY = "inv:c1:INV-06:overdue"
SHORT = {"send_timeout": 0.5, "claim_grace": 0.5}  # a claim that expires after 1 s


class Crashing:
    """The real mailer, then the process "dies": nothing after the send runs (a
    CancelledError is what an asyncio task sees when its worker goes away)."""

    def __init__(self, mailer: SmtpMailer) -> None:
        self.mailer = mailer

    async def send(self, message: EmailMessage) -> SendReceipt:
        await self.mailer.send(message)
        raise asyncio.CancelledError


class CutDatabase:
    """The real mailer, then the database connection of the delivery is terminated, so
    recording ``sent`` fails."""

    def __init__(self, mailer: SmtpMailer, admin: psycopg.AsyncConnection,
                 victim: psycopg.AsyncConnection) -> None:
        self.mailer, self.admin, self.victim = mailer, admin, victim

    async def send(self, message: EmailMessage) -> SendReceipt:
        receipt = await self.mailer.send(message)
        await self.admin.execute("SELECT pg_terminate_backend(%s)",
                                 (self.victim.info.backend_pid,))
        return receipt


class Observing:
    """The real mailer; before talking to SMTP, looks at the row from another connection."""

    def __init__(self, mailer: SmtpMailer, other: psycopg.AsyncConnection,
                 pool: AsyncConnectionPool) -> None:
        self.mailer, self.other, self.pool = mailer, other, pool
        self.seen: list[tuple[str, int, int]] = []

    async def send(self, message: EmailMessage) -> SendReceipt:
        async with self.other.transaction():
            # NOWAIT: raises at once if the delivery still held the row lock.
            cur = await self.other.execute(
                "SELECT status, attempts FROM notifications WHERE key = %s FOR UPDATE NOWAIT",
                (KEY,))
            status, attempts = await cur.fetchone()
        stats = self.pool.get_stats()
        self.seen.append((status, attempts, stats["pool_size"] - stats["pool_available"]))
        return await self.mailer.send(message)


async def test_the_claim_is_committed_and_nothing_is_held_during_smtp(
    conn, database_url, scripted_smtp, mailer
):
    await outbox.record(conn, draft())
    async with AsyncConnectionPool(database_url, min_size=1, max_size=2, open=False) as pool, \
            await psycopg.AsyncConnection.connect(database_url) as other:
        observing = Observing(mailer, other, pool)
        assert (await outbox.deliver(pool, KEY, observing)).status == "sent"
    # Committed `sending` claim, no row lock, no pool connection checked out.
    assert observing.seen == [("sending", 1, 0)]
    row = await outbox.get(conn, KEY)
    assert (row.status, row.attempts, len(scripted_smtp.messages)) == ("sent", 1, 1)


async def test_a_crash_after_the_server_accepted_marks_unknown_and_never_resends(
    conn, database_url, scripted_smtp, mailer
):
    await outbox.record(conn, draft())
    with pytest.raises(asyncio.CancelledError):
        await outbox.deliver(conn, KEY, Crashing(mailer), **SHORT)
    assert (await outbox.get(conn, KEY)).status == "sending"  # the crash left the claim
    async with AsyncConnectionPool(database_url, min_size=1, max_size=2, open=False) as pool:
        # The retry waits out the claim (its owner might be alive), then gives up on it.
        result = await outbox.deliver(pool, KEY, mailer)
    assert result.status == "unknown" and "outcome unknown after a crash" in result.error
    row = await outbox.get(conn, KEY)
    assert row.status == "unknown" and "outcome unknown after a crash" in row.last_error
    assert (await outbox.deliver(conn, KEY, mailer)).status == "unknown"
    assert len(scripted_smtp.messages) == 1 and scripted_smtp.data_commands == 1


async def test_a_database_cut_between_250_and_the_sent_commit_is_unknown_not_resent(
    conn, database_url, scripted_smtp, mailer
):
    await outbox.record(conn, draft())
    victim = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
    try:
        with pytest.raises(psycopg.OperationalError):
            await outbox.deliver(victim, KEY, CutDatabase(mailer, conn, victim), **SHORT)
    finally:
        await victim.close()
    assert len(scripted_smtp.messages) == 1
    assert (await outbox.get(conn, KEY)).status == "sending"
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as retry:
        result = await outbox.deliver(retry, KEY, mailer)
    assert result.status == "unknown"
    assert len(scripted_smtp.messages) == 1 and scripted_smtp.data_commands == 1
    [message] = scripted_smtp.messages
    assert message["X-Dunning-Key"] == KEY


async def test_a_live_claim_is_waited_for_not_declared_unknown(conn, scripted_smtp, mailer):
    await outbox.record(conn, draft())
    scripted_smtp.data_delay = 1.5  # longer than the first poll intervals, shorter than the claim
    first = asyncio.create_task(outbox.deliver(conn, KEY, mailer))
    await asyncio.sleep(0.3)
    async with await psycopg.AsyncConnection.connect(conn.info.dsn, autocommit=True) as other:
        second = await outbox.deliver(other, KEY, mailer)
    assert (await first).status == "sent" and second.status == "already_sent"
    assert scripted_smtp.data_commands == 1


async def test_a_transient_refusal_releases_the_claim_and_is_retried(conn, scripted_smtp, mailer):
    scripted_smtp.data_replies = ["451 4.3.0 Try again later"]
    await outbox.record(conn, draft())
    with pytest.raises(TransientMailError):
        await outbox.deliver(conn, KEY, mailer)
    row = await outbox.get(conn, KEY)
    assert (row.status, row.last_error) == ("pending", "451 4.3.0 Try again later")
    assert (await outbox.deliver(conn, KEY, mailer)).status == "sent"
    assert len(scripted_smtp.messages) == 1


async def test_an_unknown_notification_is_listed_and_resent_under_a_new_key(
    conn, scripted_smtp, mailer
):
    scripted_smtp.drop_next_data = 1
    await outbox.record(conn, draft())
    assert (await outbox.deliver(conn, KEY, mailer)).status == "unknown"
    cur = await conn.execute("SELECT key FROM notifications WHERE status = 'unknown'")
    assert await cur.fetchall() == [(KEY,)]
    new_key = await outbox.resend(conn, KEY, "finance@acme", "outcome unknown")
    assert (await outbox.deliver(conn, new_key, mailer)).status == "sent"
    [message] = scripted_smtp.messages
    assert message["X-Dunning-Key"] == new_key


async def test_expire_fails_a_pending_row_with_its_last_error(conn, scripted_smtp, mailer):
    scripted_smtp.data_replies = ["451 4.7.1 Greylisted"]
    await outbox.record(conn, draft())
    with pytest.raises(TransientMailError):
        await outbox.deliver(conn, KEY, mailer)
    assert await outbox.expire(conn, KEY, "retry window ended") == "failed"
    row = await outbox.get(conn, KEY)
    assert (row.status, row.last_error) == ("failed", "451 4.7.1 Greylisted")
    assert (await outbox.deliver(conn, KEY, mailer)).status == "failed"
    assert await outbox.expire(conn, "nope", "x") is None


async def test_every_mail_carries_its_kind_and_key_headers(conn, scripted_smtp, mailer):
    await outbox.record(conn, draft())
    await outbox.deliver(conn, KEY, mailer)
    [message] = scripted_smtp.messages
    assert message["X-Dunning-Kind"] == "overdue"
    assert message["X-Dunning-Key"] == KEY
    assert b"\r\nX-Dunning-Key: inv:c1:INV-06:overdue\r\n" in scripted_smtp.raw[0]


@pytest.mark.parametrize("field", ["kind", "key"])
def test_cr_lf_in_the_kind_or_key_header_is_refused(field):
    values = {"kind": "overdue", "key": KEY, field: "x\r\nBcc: evil@x.example"}
    with pytest.raises(HeaderInjectionError):
        build_message(sender=Sender("no-reply@easycall.com", "EasyCall"),
                      to_address="ana@example.net", to_name="Ana", subject="S", text="t",
                      html="<p>t</p>", message_id="<a@easycall.com>", **values)


def test_the_cli_lists_by_every_outbox_status_and_refuses_others():
    from typer.testing import CliRunner

    from cli import NOTIFICATION_STATUSES, app

    assert NOTIFICATION_STATUSES == ["pending", "sending", "sent", "failed", "unknown"]
    result = CliRunner().invoke(app, ["notifications", "list", "--status", "bogus"])
    assert result.exit_code == 2 and "unknown" in result.output
