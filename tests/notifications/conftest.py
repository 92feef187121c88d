"""Scripted SMTP servers for failure semantics (the plain sink is ``smtp_sink`` in tests/conftest).

``scripted_smtp`` is a real aiosmtpd server (no SMTPUTF8, like many relays) whose replies a
test scripts: DATA replies in order (``451`` then ``250``), refused recipients, a dropped
connection in the middle of DATA, a slow server. It counts connections as the server sees
them and keeps the raw bytes of every accepted message.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import psycopg
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from activities.notifications.mailer import SmtpConfig, SmtpMailer
from tests.support.ports import free_port


@dataclass
class ScriptedSmtp:
    host: str
    port: int
    # Replies to DATA, used in order; when empty the message is accepted with 250.
    data_replies: list[str] = field(default_factory=list)
    # Reply to RCPT TO:<address> for these addresses (e.g. "550 5.1.1 User unknown").
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    drop_next_data: int = 0  # close the connection when the next N DATA commands arrive
    data_delay: float = 0.0  # seconds to wait before answering DATA
    connections: int = 0
    data_commands: int = 0  # DATA transactions that reached the handler, accepted or not
    messages: list[EmailMessage] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    envelopes: list[tuple[str, list[str], list[str]]] = field(default_factory=list)
    sessions: list[SMTP] = field(default_factory=list)
    loop: asyncio.AbstractEventLoop | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def drop_all_connections(self) -> None:
        """Close every open connection from the server side (an idle timeout, a restart)."""
        assert self.loop is not None

        def close() -> None:
            for session in self.sessions:
                if session.transport is not None:
                    session.transport.close()

        done = threading.Event()
        self.loop.call_soon_threadsafe(lambda: (close(), done.set()))
        done.wait(5)


class _Handler:
    def __init__(self, state: ScriptedSmtp) -> None:
        self.state = state

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        reply = self.state.rcpt_replies.get(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        state = self.state
        with state.lock:
            state.data_commands += 1
            drop = state.drop_next_data > 0
            if drop:
                state.drop_next_data -= 1
            reply = state.data_replies.pop(0) if state.data_replies else None
        if state.data_delay:
            await asyncio.sleep(state.data_delay)
        if drop:
            server.transport.close()
            return "421 4.4.2 connection dropped"  # never reaches the client
        if reply is not None and not reply.startswith("250"):
            return reply
        data: bytes = envelope.original_content or envelope.content
        with state.lock:
            state.raw.append(data)
            state.messages.append(BytesParser(policy=policy.default).parsebytes(data))
            state.envelopes.append(
                (envelope.mail_from, list(envelope.rcpt_tos), list(envelope.mail_options))
            )
        return reply or "250 2.0.0 OK queued"


class _CountingSMTP(SMTP):
    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        state: ScriptedSmtp = self.event_handler.state
        with state.lock:
            state.connections += 1
            state.sessions.append(self)
            state.loop = asyncio.get_running_loop()


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _CountingSMTP(self.handler, **self.SMTP_kwargs)


@pytest.fixture
def scripted_smtp() -> Iterator[ScriptedSmtp]:
    port = free_port()
    state = ScriptedSmtp(host="127.0.0.1", port=port)
    # enable_SMTPUTF8=False: names must arrive RFC 2047 encoded, never as raw UTF-8.
    controller = _Controller(
        _Handler(state), hostname="127.0.0.1", port=port, enable_SMTPUTF8=False
    )
    controller.start()
    # Controller.start() makes a probe connection of its own: do not count it.
    with state.lock:
        state.connections = 0
        state.sessions.clear()
    try:
        yield state
    finally:
        controller.stop()


@pytest.fixture
async def mailer(scripted_smtp: ScriptedSmtp) -> AsyncIterator[SmtpMailer]:
    async with SmtpMailer(SmtpConfig(host=scripted_smtp.host, port=scripted_smtp.port)) as m:
        yield m


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[psycopg.AsyncConnection]:
    """A connection with one class and one customer (the outbox rows need a customer)."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as c:
        await c.execute(
            "INSERT INTO customer_classes (name, currency, threshold, from_address, from_name,"
            " reply_to, language, timezone) VALUES"
            " ('EasyCall', 'USD', 1000, 'no-reply@easycall.com', 'EasyCall',"
            "  'support@easycall.com', 'en', 'UTC'),"
            " ('MegaStar', 'BRL', 0, 'no-reply@megastar.com', 'MegaStar',"
            "  'support@megastar.com', 'pt-BR', 'America/Sao_Paulo'),"
            " ('Plain', 'EUR', 0, NULL, NULL, NULL, 'es', 'Europe/Madrid')"
        )
        await c.execute(
            "INSERT INTO customers (id, name, email, class_name, language) VALUES"
            " ('c1', 'Ana Souza', 'ana@example.net', 'EasyCall', NULL),"
            " ('c2', 'João Conceição', 'joao@example.net', 'MegaStar', 'pt-BR'),"
            " ('c3', 'María Pérez', 'maria@example.net', 'Plain', NULL)"
        )
        yield c
