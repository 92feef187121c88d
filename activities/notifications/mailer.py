"""SMTP delivery with reused connections and transient/permanent error classification.

``SmtpMailer`` keeps a small pool of connected aiosmtplib clients. A send borrows one (or
opens one), runs MAIL / RCPT / DATA itself so it knows which stage failed, and returns it
to the pool. Classification (SPEC 2.6):

- 4xx replies, connection refused / lost, timeouts            -> ``TransientMailError``
- connection lost or timeout during DATA (the server may have
  queued the message, only its reply is missing)               -> ``OutcomeUnknownMailError``
  (a ``TransientMailError`` that the outbox must never resend)
- 5xx reply to MAIL, RCPT or DATA, or any refused recipient   -> ``PermanentMailError``
- trouble before MAIL (greeting, EHLO, STARTTLS, AUTH)        -> ``TransientMailError``:
  it says nothing about this message, and marking every notification failed because of a
  wrong password would need a mass resend once the operator fixes it.

Messages are sent 7-bit (see ``message``): no SMTPUTF8 or 8BITMIME is ever required.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import getaddresses
from typing import Any, Literal, Protocol

import aiosmtplib

from activities.notifications.errors import (
    InvalidAddressError,
    MailError,
    MessageBuildError,
    OutcomeUnknownMailError,
    PermanentMailError,
    TransientMailError,
)
from activities.notifications.message import check_address, wire_bytes

log = logging.getLogger(__name__)

TlsMode = Literal["none", "starttls", "tls"]


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never in logs or reprs
    tls: TlsMode = "none"
    timeout: float = 30.0
    validate_certs: bool = True
    local_hostname: str | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> SmtpConfig:
        secret = settings.smtp_password
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username or None,
            password=secret.get_secret_value() if secret is not None else None,
            tls=settings.smtp_tls,
            timeout=float(getattr(settings, "smtp_timeout_seconds", 30.0)),
        )


@dataclass(frozen=True)
class SendReceipt:
    message_id: str | None
    reply: str  # the server's answer to DATA, e.g. "250 2.0.0 OK queued as 4F1A2"


class Mailer(Protocol):
    """What ``outbox.deliver`` needs; tests may pass their own."""

    async def send(self, message: EmailMessage) -> SendReceipt: ...


def _reply(code: int, message: str) -> str:
    return f"{code} {message}".strip()


def _classify_response(code: int, message: str) -> MailError:
    text = _reply(code, message)
    if 500 <= code <= 599:
        return PermanentMailError(text, code)
    # 4xx, and anything nonsensical (aiosmtplib uses -1 for "no reply"): try again later.
    return TransientMailError(text)


@dataclass
class _Connection:
    client: aiosmtplib.SMTP
    opened_at: float
    last_used: float
    sent: int = 0
    reset_ok: bool = False  # set when a refused transaction was cleanly RSET


class _StaleConnection(Exception):
    """A reused connection died before the server accepted anything (idle timeout)."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


class SmtpMailer:
    """Pooled SMTP client; safe to share between concurrent activity tasks of one loop.

    ``pool_size`` bounds concurrent transactions (and connections); an idle connection is
    reused for the next message unless it has been idle for ``max_idle`` seconds or has
    carried ``max_messages`` messages (servers limit both).
    """

    def __init__(
        self,
        config: SmtpConfig,
        *,
        pool_size: int = 2,
        max_idle: float = 60.0,
        max_messages: int = 100,
    ) -> None:
        if pool_size < 1:
            raise ValueError("pool_size must be at least 1")
        self.config = config
        self.max_idle = max_idle
        self.max_messages = max_messages
        self._slots = asyncio.Semaphore(pool_size)
        self._idle: list[_Connection] = []
        self._closed = False
        self.connections_opened = 0  # for metrics and tests

    async def __aenter__(self) -> SmtpMailer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def send(self, message: EmailMessage) -> SendReceipt:
        """Deliver one message; raises ``TransientMailError`` or ``PermanentMailError``."""
        if self._closed:
            raise RuntimeError("the mailer is closed")
        sender, recipients = _envelope(message)
        data = wire_bytes(message)
        async with self._slots:
            conn = self._take_idle()
            try:
                if conn is None:
                    conn = await self._open()
                    reply = await self._transaction(conn, sender, recipients, data, False)
                else:
                    try:
                        reply = await self._transaction(conn, sender, recipients, data, True)
                    except _StaleConnection as stale:
                        # Nothing was accepted on the dead connection: a retry cannot
                        # duplicate the message.
                        log.info("SMTP connection went stale (%s); reconnecting", stale)
                        _discard(conn)
                        conn = None
                        conn = await self._open()
                        reply = await self._transaction(conn, sender, recipients, data, False)
            except BaseException:
                # Keep the connection only when the server refused cleanly and the envelope
                # was reset; after a timeout, a drop or a cancellation its state is unknown.
                if conn is not None:
                    if conn.reset_ok and conn.client.is_connected:
                        conn.reset_ok = False
                        conn.last_used = time.monotonic()
                        self._idle.append(conn)
                    else:
                        _discard(conn)
                raise
            conn.sent += 1
            conn.last_used = time.monotonic()
            self._idle.append(conn)
        return SendReceipt(message_id=message["Message-ID"], reply=reply)

    async def close(self) -> None:
        """QUIT every idle connection. Sends in flight finish on their own connection."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            await _quit(conn)

    # ------------------------------------------------------------------ internals

    def _take_idle(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()  # most recently used first: the likeliest to be alive
            fresh = now - conn.last_used < self.max_idle and conn.sent < self.max_messages
            if fresh and conn.client.is_connected:
                return conn
            # Expired: close without QUIT, this send should not wait on a dying connection.
            _discard(conn)
        return None

    async def _open(self) -> _Connection:
        cfg = self.config
        client = aiosmtplib.SMTP(
            hostname=cfg.host,
            port=cfg.port,
            username=cfg.username,
            password=cfg.password,
            use_tls=cfg.tls == "tls",
            start_tls=cfg.tls == "starttls",
            validate_certs=cfg.validate_certs,
            timeout=cfg.timeout,
            local_hostname=cfg.local_hostname,
        )
        try:
            await client.connect()
            if client.is_ehlo_or_helo_needed:
                await client.ehlo()  # now, so that SIZE support is known before MAIL
        except (aiosmtplib.SMTPException, OSError) as exc:
            # Greeting, EHLO, STARTTLS or AUTH: a channel problem, not this message's.
            client.close()
            raise TransientMailError(f"cannot connect to {cfg.host}:{cfg.port}: {exc}") from exc
        self.connections_opened += 1
        now = time.monotonic()
        return _Connection(client=client, opened_at=now, last_used=now)

    async def _transaction(
        self,
        conn: _Connection,
        sender: str,
        recipients: Sequence[str],
        data: bytes,
        reused: bool,
    ) -> str:
        client = conn.client
        timeout = self.config.timeout
        options = [f"SIZE={len(data)}"] if client.supports_extension("size") else []
        try:
            await client.mail(sender, options=options, timeout=timeout)
        except aiosmtplib.SMTPResponseException as exc:
            if reused and exc.code == 421:  # "closing channel": the idle connection expired
                raise _StaleConnection(exc) from exc
            await self._reset(conn)
            raise _classify_response(exc.code, exc.message) from exc
        except TimeoutError as exc:  # before OSError: TimeoutError is one
            raise TransientMailError(f"timeout waiting for the MAIL FROM reply: {exc}") from exc
        except OSError as exc:  # SMTPServerDisconnected is a ConnectionError
            if reused:
                raise _StaleConnection(exc) from exc
            raise TransientMailError(f"connection lost before MAIL FROM: {exc}") from exc

        try:
            refused: dict[str, aiosmtplib.SMTPRecipientRefused] = {}
            for recipient in recipients:
                try:
                    await client.rcpt(recipient, timeout=timeout)
                except aiosmtplib.SMTPRecipientRefused as exc:
                    refused[recipient] = exc
            if refused:
                await self._reset(conn)
                raise _refused(refused)
        except aiosmtplib.SMTPResponseException as exc:
            await self._reset(conn)
            raise _classify_response(exc.code, exc.message) from exc
        except TimeoutError as exc:
            raise TransientMailError(f"timeout waiting for the RCPT TO reply: {exc}") from exc
        except OSError as exc:
            raise TransientMailError(f"connection lost before DATA: {exc}") from exc

        try:
            response = await client.data(data, timeout=timeout)
        except aiosmtplib.SMTPResponseException as exc:
            # A reply (4xx/5xx) to DATA or to the end of the message: definitely refused.
            await self._reset(conn)
            raise _classify_response(exc.code, exc.message) from exc
        except TimeoutError as exc:
            # The message may have been received and queued before the reply got lost:
            # the caller must not send it again (SPEC 2.6, at most once).
            raise OutcomeUnknownMailError(
                f"timeout during DATA, the server may have accepted the message: {exc}"
            ) from exc
        except OSError as exc:
            raise OutcomeUnknownMailError(
                f"connection lost during DATA, the server may have accepted the message: {exc}"
            ) from exc
        return _reply(response.code, response.message)

    async def _reset(self, conn: _Connection) -> None:
        # After a 4xx/5xx reply the connection is still good once the envelope is reset.
        try:
            await conn.client.rset(timeout=self.config.timeout)
        except (aiosmtplib.SMTPException, OSError):
            conn.reset_ok = False
        else:
            conn.reset_ok = True


def _refused(refused: dict[str, aiosmtplib.SMTPRecipientRefused]) -> MailError:
    # One message per customer: any refused recipient fails the notification, and the
    # worst reply decides (a 5xx among them makes it permanent).
    worst = max(refused.values(), key=lambda e: e.code)
    detail = "; ".join(f"{r}: {_reply(e.code, e.message)}" for r, e in refused.items())
    if isinstance(_classify_response(worst.code, worst.message), PermanentMailError):
        return PermanentMailError(f"recipient refused: {detail}", worst.code)
    return TransientMailError(f"recipient deferred: {detail}")


def _envelope(message: EmailMessage) -> tuple[str, list[str]]:
    """MAIL FROM and RCPT TO addresses of ``message``.

    Fast path: the raw header values (``build_message`` stores them pre-encoded, ASCII)
    through ``email.utils.getaddresses``, a fraction of the cost of the policy's header
    parser, accepted only when there is one From and every address is a plain addr-spec
    (``check_address``). Anything else goes through the full parser below.
    """
    return _envelope_fast(message) or _envelope_parsed(message)


def _envelope_parsed(message: EmailMessage) -> tuple[str, list[str]]:
    try:
        sender = message["From"].addresses[0].addr_spec
        recipients = [
            address.addr_spec
            for header in ("To", "Cc", "Bcc")
            if message[header] is not None
            for address in message[header].addresses
        ]
    except (AttributeError, IndexError) as exc:
        raise InvalidAddressError(f"message has no usable From/To: {exc}") from exc
    if not recipients:
        raise InvalidAddressError("message has no recipient")
    return sender, recipients


def _envelope_fast(message: EmailMessage) -> tuple[str, list[str]] | None:
    raw: dict[str, list[str]] = {"from": [], "to": [], "cc": [], "bcc": []}
    for name, value in message.raw_items():
        values = raw.get(name.lower())
        if values is not None:
            if not isinstance(value, str) or hasattr(value, "name"):
                return None  # a parsed header object, not a raw value: use the full parser
            values.append(value)
    if len(raw["from"]) != 1 or any(len(values) > 1 for values in raw.values()):
        return None  # the full parser reads the first of each header: same answer there
    senders = getaddresses(raw["from"])
    recipients = [addr for _, addr in getaddresses(raw["to"] + raw["cc"] + raw["bcc"])]
    if len(senders) != 1 or not recipients:
        return None
    try:
        for address in (senders[0][1], *recipients):
            if check_address("envelope address", address) != address:
                return None
    except MessageBuildError:  # not a plain address (or a control character): full parser
        return None
    return senders[0][1], recipients


async def _quit(conn: _Connection) -> None:
    # Closing: a failed QUIT changes nothing, the socket is closed either way.
    with contextlib.suppress(aiosmtplib.SMTPException, OSError):
        await asyncio.wait_for(conn.client.quit(), timeout=5)
    conn.client.close()


def _discard(conn: _Connection) -> None:
    conn.client.close()
