"""SMTP delivery against real aiosmtpd servers: encoding, reuse, failure classification."""

from __future__ import annotations

import asyncio

import pytest

from activities.notifications.errors import PermanentMailError, TransientMailError
from activities.notifications.mailer import SmtpConfig, SmtpMailer
from activities.notifications.message import Sender, build_message, message_id_for
from activities.notifications.render import build_context, render
from tests.support.ports import free_port


def notification(*, key: str = "k1", sender: Sender | None = None, to_name: str = "Ana Souza",
                 to_address: str = "ana@example.net", language: str = "pt-BR"):
    sender = sender or Sender("no-reply@easycall.com", "EasyCall", "support@easycall.com")
    context = build_context(
        language=language, currency_code="BRL", customer_id="c1", customer_name=to_name,
        company_name=sender.name or sender.address, contact_email=sender.contact,
        invoice_number="INV-06", amount_due=2000, remaining=2000, new_charges=1000,
    )
    rendered = render("invoice_issued", language, context)
    return build_message(
        sender=sender, to_address=to_address, to_name=to_name, subject=rendered.subject,
        text=rendered.text, html=rendered.html, message_id=message_id_for(key, sender.domain),
    )


@pytest.mark.parametrize(
    ("from_name", "to_name"),
    [("Atenção ao Cliente", "João Conceição"), ("Cobrança, Ltda", "María José Fernández")],
)
async def test_non_ascii_names_survive_a_server_without_smtputf8(
    scripted_smtp, mailer, from_name, to_name
):
    sender = Sender("cobranca@megastar.com.br", from_name, "atendimento@megastar.com.br")
    receipt = await mailer.send(notification(sender=sender, to_name=to_name))
    assert receipt.reply.startswith("250")
    assert receipt.message_id == message_id_for("k1", "megastar.com.br")
    [raw] = scripted_smtp.raw
    raw.decode("ascii")  # nothing but 7-bit ASCII went over the wire
    mail_from, rcpt_tos, options = scripted_smtp.envelopes[0]
    assert (mail_from, rcpt_tos) == ("cobranca@megastar.com.br", ["ana@example.net"])
    assert not any(o.upper().startswith(("SMTPUTF8", "BODY=8BITMIME")) for o in options)
    [message] = scripted_smtp.messages
    assert message["From"].addresses[0].display_name == from_name
    assert message["From"].addresses[0].addr_spec == "cobranca@megastar.com.br"
    assert message["To"].addresses[0].display_name == to_name
    assert message["Reply-To"] == "atendimento@megastar.com.br"
    assert message["Subject"] == f"{from_name}: sua fatura INV-06 já está disponível"
    text = message.get_body(("plain",)).get_content()
    assert f"Olá, {to_name}," in text and "R$\xa020,00" in text


async def test_the_shared_smtp_sink_receives_it_too(smtp_sink):
    async with SmtpMailer(SmtpConfig(host=smtp_sink.host, port=smtp_sink.port)) as mailer:
        await mailer.send(notification())
    [message] = smtp_sink.messages
    assert message["From"] == "EasyCall <no-reply@easycall.com>"


async def test_connections_are_reused(scripted_smtp, mailer):
    for n in range(5):
        await mailer.send(notification(key=f"k{n}"))
    assert len(scripted_smtp.messages) == 5
    assert scripted_smtp.connections == 1
    assert mailer.connections_opened == 1


async def test_concurrent_sends_share_a_bounded_pool(scripted_smtp):
    config = SmtpConfig(host=scripted_smtp.host, port=scripted_smtp.port)
    async with SmtpMailer(config, pool_size=2) as mailer:
        await asyncio.gather(*(mailer.send(notification(key=f"k{n}")) for n in range(12)))
    assert len(scripted_smtp.messages) == 12
    assert scripted_smtp.connections <= 2


async def test_451_is_transient_and_the_connection_stays_usable(scripted_smtp, mailer):
    scripted_smtp.data_replies = ["451 4.3.0 Try again later"]
    with pytest.raises(TransientMailError, match="451 4.3.0 Try again later"):
        await mailer.send(notification())
    await mailer.send(notification())
    assert len(scripted_smtp.messages) == 1
    assert scripted_smtp.connections == 1  # RSET, not a reconnect


async def test_550_on_data_is_permanent_with_the_servers_reply(scripted_smtp, mailer):
    scripted_smtp.data_replies = ["550 5.7.1 Message rejected as spam"]
    with pytest.raises(PermanentMailError) as caught:
        await mailer.send(notification())
    assert caught.value.reply == "550 5.7.1 Message rejected as spam"
    assert caught.value.code == 550
    assert scripted_smtp.messages == []


async def test_a_refused_recipient_is_permanent(scripted_smtp, mailer):
    scripted_smtp.rcpt_replies["ana@example.net"] = "550 5.1.1 <ana@example.net>: User unknown"
    with pytest.raises(PermanentMailError, match="550 5.1.1 <ana@example.net>: User unknown"):
        await mailer.send(notification())
    assert scripted_smtp.data_commands == 0
    # The connection was reset and still works for the next customer.
    await mailer.send(notification(to_address="joao@example.net"))
    assert scripted_smtp.connections == 1


async def test_a_deferred_recipient_is_transient(scripted_smtp, mailer):
    scripted_smtp.rcpt_replies["ana@example.net"] = "450 4.2.1 Mailbox busy"
    with pytest.raises(TransientMailError, match="450 4.2.1"):
        await mailer.send(notification())


async def test_a_dropped_connection_is_transient_and_the_mailer_reconnects(
    scripted_smtp, mailer
):
    scripted_smtp.drop_next_data = 1
    with pytest.raises(TransientMailError, match="connection lost"):
        await mailer.send(notification())
    await mailer.send(notification())
    assert len(scripted_smtp.messages) == 1
    assert scripted_smtp.connections == 2


async def test_an_idle_connection_closed_by_the_server_is_replaced_silently(
    scripted_smtp, mailer
):
    await mailer.send(notification(key="a"))
    scripted_smtp.drop_all_connections()
    await asyncio.sleep(0.1)
    await mailer.send(notification(key="b"))  # no error: nothing had been sent on it
    assert [m["Message-ID"] for m in scripted_smtp.messages] == [
        message_id_for("a", "easycall.com"), message_id_for("b", "easycall.com")]
    assert scripted_smtp.connections == 2


async def test_connection_refused_is_transient():
    mailer = SmtpMailer(SmtpConfig(host="127.0.0.1", port=free_port(), timeout=2))
    with pytest.raises(TransientMailError, match="cannot connect"):
        await mailer.send(notification())
    await mailer.close()


async def test_a_slow_server_times_out_as_transient(scripted_smtp):
    scripted_smtp.data_delay = 2.0
    config = SmtpConfig(host=scripted_smtp.host, port=scripted_smtp.port, timeout=0.5)
    async with SmtpMailer(config) as mailer:
        with pytest.raises(TransientMailError, match="timeout"):
            await mailer.send(notification())


async def test_smtp_config_from_settings_keeps_the_password_out_of_repr():
    from pydantic import SecretStr

    class FakeSettings:
        smtp_host = "smtp.example.com"
        smtp_port = 587
        smtp_username = "dunning"
        smtp_password = SecretStr("hunter2")
        smtp_tls = "starttls"
        smtp_timeout_seconds = 12.5

    config = SmtpConfig.from_settings(FakeSettings())
    assert (config.host, config.port, config.tls, config.timeout) == (
        "smtp.example.com", 587, "starttls", 12.5)
    assert config.password == "hunter2"
    assert "hunter2" not in repr(config)


@pytest.mark.parametrize(
    "to_name",
    ["Ana Souza", "João Conceição", "Cobrança, Ltda", 'O\'Brien "Junior" <x@evil.test>',
     "María José Fernández de la Concepción y Rodríguez de Alcántara", "=?utf-8?q?x?=",
     "a@b.example, c@d.example", ""],
)
def test_the_fast_envelope_matches_the_full_header_parser(to_name):
    from email.message import EmailMessage

    from activities.notifications.mailer import _envelope, _envelope_fast, _envelope_parsed

    message = notification(to_name=to_name)
    fast = _envelope_fast(message)
    assert fast == _envelope_parsed(message) == ("no-reply@easycall.com", ["ana@example.net"])
    assert _envelope(message) == fast
    # A message not built by build_message (parsed header objects) takes the full parser.
    other = EmailMessage()
    other["From"] = "A <a@example.com>"
    other["To"] = "B <b@example.com>, c@example.com"
    assert _envelope_fast(other) is None
    assert _envelope(other) == ("a@example.com", ["b@example.com", "c@example.com"])
