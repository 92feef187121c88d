"""At most once per key, failure semantics and resend, on real PostgreSQL and SMTP servers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg.types.json import Jsonb

from activities.notifications import outbox
from activities.notifications.errors import (
    HeaderInjectionError,
    NotificationNotFound,
    PermanentMailError,
    TransientMailError,
)
from activities.notifications.mailer import SmtpConfig, SmtpMailer
from activities.notifications.message import Sender, message_id_for, sender_for
from activities.notifications.outbox import NotificationDraft
from activities.notifications.render import build_context, choose_language

COMPANY = Sender("billing@acme.example", "Acme Billing", "help@acme.example")


def draft(key: str = "inv:c1:INV-06:overdue", *, customer_name: str = "Ana Souza",
          sender: Sender | None = None, language: str = "en", kind: str = "overdue",
          to_address: str = "ana@example.net", customer_id: str = "c1") -> NotificationDraft:
    sender = sender or Sender("no-reply@easycall.com", "EasyCall", "support@easycall.com")
    context = build_context(
        language=language, currency_code="USD", timezone="UTC", customer_id=customer_id,
        customer_name=customer_name, company_name=sender.name or sender.address,
        contact_email=sender.contact, invoice_number="INV-06",
        overdue_at=datetime(2026, 6, 16, tzinfo=UTC), suspend_at=datetime(2026, 6, 19, tzinfo=UTC),
        new_charges=1000, amount_due=2000, remaining=2000, balance=2000,
    )
    return NotificationDraft(key=key, kind=kind, customer_id=customer_id, language=language,
                             to_address=to_address, sender=sender, context=context)


async def count(conn, where: str = "true", params: tuple = ()) -> int:
    cur = await conn.execute(f"SELECT count(*) FROM notifications WHERE {where}", params)
    return (await cur.fetchone())[0]


async def test_record_stores_the_notification_before_sending(conn):
    row = await outbox.record(conn, draft())
    assert row.status == "pending" and row.attempts == 0 and row.sent_at is None
    assert row.subject == "Invoice INV-06 is overdue: $20.00 outstanding"
    assert (row.from_address, row.from_name, row.reply_to) == (
        "no-reply@easycall.com", "EasyCall", "support@easycall.com")
    assert row.message_id == message_id_for("inv:c1:INV-06:overdue", "easycall.com")
    assert row.context["remaining"] == "$20.00"
    assert row.invoice_number is None


async def test_recording_a_key_twice_keeps_the_first(conn):
    first = await outbox.record(conn, draft())
    second = await outbox.record(conn, draft(customer_name="Someone Else"))
    assert second == first
    assert second.context["customer_name"] == "Ana Souza"
    assert await count(conn) == 1


@pytest.mark.parametrize(
    "bad",
    [
        {"customer_name": "X\r\nBcc: evil@x.example"},
        {"sender": Sender("no-reply@easycall.com", "X\r\nBcc: evil@x.example")},
        {"to_address": "ana@example.net\r\nBcc: evil@x.example"},
    ],
)
async def test_header_injection_is_refused_before_anything_is_recorded(conn, bad):
    with pytest.raises(HeaderInjectionError):
        await outbox.record(conn, draft(**bad))
    assert await count(conn) == 0


async def test_deliver_twice_sends_once(conn, scripted_smtp, mailer):
    await outbox.record(conn, draft())
    first = await outbox.deliver(conn, "inv:c1:INV-06:overdue", mailer)
    second = await outbox.deliver(conn, "inv:c1:INV-06:overdue", mailer)
    assert first.status == "sent" and second.status == "already_sent"
    assert first.message_id == second.message_id
    assert len(scripted_smtp.messages) == 1
    [message] = scripted_smtp.messages
    assert message["Message-ID"] == first.message_id
    row = await outbox.get(conn, "inv:c1:INV-06:overdue")
    assert row.status == "sent" and row.attempts == 1 and row.sent_at is not None


async def test_ten_concurrent_deliveries_of_one_key_send_one_message(
    conn, database_url, scripted_smtp, mailer
):
    await outbox.record(conn, draft())
    scripted_smtp.data_delay = 0.2  # keep the first delivery in flight while others arrive
    connections = [await psycopg.AsyncConnection.connect(database_url) for _ in range(10)]
    try:
        results = await asyncio.gather(
            *(outbox.deliver(c, "inv:c1:INV-06:overdue", mailer) for c in connections)
        )
    finally:
        for c in connections:
            await c.close()
    assert sorted(r.status for r in results) == ["already_sent"] * 9 + ["sent"]
    assert len(scripted_smtp.messages) == 1
    assert scripted_smtp.data_commands == 1


async def test_451_then_250_retries_and_delivers_exactly_once(conn, scripted_smtp, mailer):
    scripted_smtp.data_replies = ["451 4.7.1 Greylisted, try again in 5 minutes"]
    await outbox.record(conn, draft())
    with pytest.raises(TransientMailError):
        await outbox.deliver(conn, "inv:c1:INV-06:overdue", mailer)
    row = await outbox.get(conn, "inv:c1:INV-06:overdue")
    assert row.status == "pending" and row.attempts == 1
    assert row.last_error == "451 4.7.1 Greylisted, try again in 5 minutes"
    result = await outbox.deliver(conn, "inv:c1:INV-06:overdue", mailer)
    assert result.status == "sent"
    assert (await outbox.deliver(conn, "inv:c1:INV-06:overdue", mailer)).status == "already_sent"
    assert len(scripted_smtp.messages) == 1
    row = await outbox.get(conn, "inv:c1:INV-06:overdue")
    assert row.status == "sent" and row.attempts == 2


async def test_550_marks_failed_with_the_reply_and_is_not_retried(conn, scripted_smtp, mailer):
    scripted_smtp.data_replies = ["550 5.7.1 Message rejected: policy violation"]
    await outbox.record(conn, draft())
    with pytest.raises(PermanentMailError):
        await outbox.deliver(conn, "inv:c1:INV-06:overdue", mailer)
    row = await outbox.get(conn, "inv:c1:INV-06:overdue")
    assert row.status == "failed" and row.attempts == 1
    assert row.last_error == "550 5.7.1 Message rejected: policy violation"
    again = await outbox.deliver(conn, "inv:c1:INV-06:overdue", mailer)
    assert again.status == "failed"
    assert again.error == "550 5.7.1 Message rejected: policy violation"
    assert scripted_smtp.data_commands == 1  # the second call never talked to the server
    assert (await outbox.get(conn, "inv:c1:INV-06:overdue")).attempts == 1


async def test_a_refused_recipient_marks_failed(conn, scripted_smtp, mailer):
    scripted_smtp.rcpt_replies["ana@example.net"] = "550 5.1.1 <ana@example.net>: User unknown"
    await outbox.record(conn, draft())
    with pytest.raises(PermanentMailError):
        await outbox.deliver(conn, "inv:c1:INV-06:overdue", mailer)
    row = await outbox.get(conn, "inv:c1:INV-06:overdue")
    assert row.status == "failed"
    assert "550 5.1.1 <ana@example.net>: User unknown" in row.last_error


async def test_a_connection_dropped_during_data_is_unknown_and_never_resent(
    conn, scripted_smtp, mailer
):
    # The server had the whole message when the connection died: it may have queued it.
    scripted_smtp.drop_next_data = 1
    await outbox.record(conn, draft())
    result = await outbox.deliver(conn, "inv:c1:INV-06:overdue", mailer)
    assert result.status == "unknown" and "connection lost during DATA" in result.error
    row = await outbox.get(conn, "inv:c1:INV-06:overdue")
    assert row.status == "unknown" and row.attempts == 1
    again = await outbox.deliver(conn, "inv:c1:INV-06:overdue", mailer)
    assert again.status == "unknown"
    assert scripted_smtp.data_commands == 1  # the retry never talked to the server


async def test_smtp_down_is_transient_and_recorded(conn):
    from tests.support.ports import free_port

    await outbox.record(conn, draft())
    async with SmtpMailer(SmtpConfig(host="127.0.0.1", port=free_port(), timeout=2)) as down:
        with pytest.raises(TransientMailError):
            await outbox.deliver(conn, "inv:c1:INV-06:overdue", down)
    row = await outbox.get(conn, "inv:c1:INV-06:overdue")
    assert row.status == "pending" and "cannot connect" in row.last_error
    assert row.attempts == 1 and row.claim_token is not None  # the claim was released


async def test_a_row_that_cannot_become_a_message_fails_without_sending(
    conn, scripted_smtp, mailer
):
    # Written around record() (which would refuse it): deliver must still refuse it.
    context = dict(draft().context, customer_name="X\r\nBcc: evil@x.example")
    await conn.execute(
        "INSERT INTO notifications (key, kind, customer_id, language, to_address, from_address,"
        " subject, context, message_id) VALUES ('bad', 'overdue', 'c1', 'en',"
        " 'ana@example.net', 'no-reply@easycall.com', 'Overdue', %s, '<bad@easycall.com>')",
        (Jsonb(context),),
    )
    with pytest.raises(HeaderInjectionError):
        await outbox.deliver(conn, "bad", mailer)
    row = await outbox.get(conn, "bad")
    assert row.status == "failed" and "line break" in row.last_error
    assert scripted_smtp.connections == 0 and scripted_smtp.data_commands == 0


async def test_xss_in_the_customer_name_is_escaped_in_the_delivered_html(
    conn, scripted_smtp, mailer
):
    evil = "<script>alert(1)</script>"
    await conn.execute("UPDATE customers SET name = %s WHERE id = 'c1'", (evil,))
    await outbox.record(conn, draft(customer_name=evil))
    await outbox.deliver(conn, "inv:c1:INV-06:overdue", mailer)
    [message] = scripted_smtp.messages
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert f"Hello {evil}," in text
    assert message["To"].addresses[0].display_name == evil


async def test_unknown_key(conn, mailer):
    with pytest.raises(NotificationNotFound):
        await outbox.deliver(conn, "nope", mailer)
    with pytest.raises(NotificationNotFound):
        await outbox.resend(conn, "nope", actor="finance@acme")


async def test_pool_is_accepted(database_url, conn, scripted_smtp, mailer):
    from psycopg_pool import AsyncConnectionPool

    await outbox.record(conn, draft())
    async with AsyncConnectionPool(database_url, min_size=1, max_size=3, open=False) as pool:
        results = await asyncio.gather(
            *(outbox.deliver(pool, "inv:c1:INV-06:overdue", mailer) for _ in range(3)))
    assert sorted(r.status for r in results) == ["already_sent", "already_sent", "sent"]
    assert len(scripted_smtp.messages) == 1


async def test_resend_makes_a_new_key_and_message_id_with_an_audit_record(
    conn, scripted_smtp, mailer
):
    key = "inv:c1:INV-06:overdue"
    await outbox.record(conn, draft(key))
    await outbox.deliver(conn, key, mailer)
    await conn.execute("UPDATE customers SET email = 'ana.souza@example.org' WHERE id = 'c1'")
    audited: list[outbox.Resend] = []

    async def audit(c, resend):
        # Same transaction: the new row is visible through the connection it was given.
        assert await count(c, "key = %s", (resend.new_key,)) == 1
        audited.append(resend)

    new_key = await outbox.resend(conn, key, "finance@acme", "customer lost it", audit=audit)
    assert new_key == f"{key}:resend:1"
    assert audited == [outbox.Resend(original_key=key, new_key=new_key, resend_of=key,
                                      customer_id="c1", to_address="ana.souza@example.org",
                                      actor="finance@acme", reason="customer lost it")]
    row = await outbox.get(conn, new_key)
    assert row.status == "pending" and row.resend_of == key
    assert row.message_id == message_id_for(new_key, "easycall.com")
    assert (await outbox.deliver(conn, new_key, mailer)).status == "sent"
    first, second = scripted_smtp.messages
    assert first["Message-ID"] != second["Message-ID"]
    assert second["To"].addresses[0].addr_spec == "ana.souza@example.org"
    assert first["Subject"] == second["Subject"]

    # Resending again, or resending the resend, numbers from the first notification.
    assert await outbox.resend(conn, key, "finance@acme") == f"{key}:resend:2"
    assert await outbox.resend(conn, new_key, "finance@acme") == f"{key}:resend:3"
    with pytest.raises(ValueError):
        await outbox.resend(conn, key, " ")


async def test_resend_of_a_failed_notification_can_reach_a_fixed_address(
    conn, scripted_smtp, mailer
):
    scripted_smtp.rcpt_replies["ana@example.net"] = "550 5.1.1 User unknown"
    await outbox.record(conn, draft())
    with pytest.raises(PermanentMailError):
        await outbox.deliver(conn, "inv:c1:INV-06:overdue", mailer)
    new_key = await outbox.resend(conn, "inv:c1:INV-06:overdue", "finance@acme",
                                  to_address="ana@example.org")
    assert (await outbox.deliver(conn, new_key, mailer)).status == "sent"
    assert scripted_smtp.envelopes[0][1] == ["ana@example.org"]


@pytest.mark.parametrize(("customer_id", "class_name"), [("c1", "EasyCall"), ("c2", "MegaStar"),
                                                          ("c3", "Plain")])
async def test_every_mail_carries_its_class_sender(conn, smtp_sink, customer_id, class_name):
    cur = await conn.execute(
        "SELECT c.name, c.email, c.language, k.language, k.from_name, k.from_address,"
        " k.reply_to FROM customers c JOIN customer_classes k ON k.name = c.class_name"
        " WHERE c.id = %s", (customer_id,))
    name, email, customer_lang, class_lang, from_name, from_address, reply_to = (
        await cur.fetchone())
    sender = sender_for(from_name, from_address, reply_to, COMPANY)
    language = choose_language(customer_lang, class_lang)
    key = f"pay:{customer_id}:p1:payment_received"
    await outbox.record(conn, draft(key, kind="payment_received", customer_id=customer_id,
                                    customer_name=name, to_address=email, sender=sender,
                                    language=language))
    async with SmtpMailer(SmtpConfig(host=smtp_sink.host, port=smtp_sink.port)) as mailer:
        assert (await outbox.deliver(conn, key, mailer)).status == "sent"
    [message] = smtp_sink.messages
    expected = {
        "EasyCall": ("EasyCall <no-reply@easycall.com>", "support@easycall.com", "en"),
        "MegaStar": ("MegaStar <no-reply@megastar.com>", "support@megastar.com", "pt-BR"),
        "Plain": ("Acme Billing <billing@acme.example>", "help@acme.example", "es"),
    }[class_name]
    assert (message["From"], message["Reply-To"], language) == expected
    assert message["To"].addresses[0].display_name == name
