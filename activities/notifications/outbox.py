"""The notification outbox: at most one email per notification key (SPEC 2.6).

``record`` writes the notification (key, sender, subject, context, Message-ID) before
anything is sent; recording the same key again returns the row already there. ``deliver``
locks the row (``SELECT ... FOR UPDATE``) for the whole SMTP transaction, so concurrent
deliveries of one key send once: the others wait on the lock and then find it ``sent``.

The one window left is a crash after the server accepted the message and before our
commit: the row stays ``pending`` and a retry sends again, with the same Message-ID, which
lets mail systems and the customer's client recognise the duplicate. Closing that window
for good would need a two-phase commit with the SMTP server, which does not exist.

Status changes: ``pending`` -> ``sent`` (success) | ``failed`` (permanent error or a message
that cannot be built) | ``pending`` with ``attempts + 1`` and ``last_error`` (transient).
A ``failed`` row is never retried automatically; finance resends it under a new key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields
from datetime import datetime
from email.message import EmailMessage
from typing import Any, Literal

from psycopg import AsyncConnection, sql
from psycopg.rows import class_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from activities.notifications.errors import (
    MessageBuildError,
    NotificationNotFound,
    PermanentMailError,
    TransientMailError,
)
from activities.notifications.mailer import Mailer
from activities.notifications.message import (
    Sender,
    build_message,
    check_address,
    check_header,
    message_id_for,
)
from activities.notifications.render import KINDS, LANGUAGES, render

Status = Literal["pending", "sent", "failed"]


@dataclass(frozen=True)
class NotificationDraft:
    """A notification to record. ``subject`` None renders it from the templates."""

    key: str
    kind: str
    customer_id: str
    language: str
    to_address: str
    sender: Sender
    context: Mapping[str, str]
    invoice_number: str | None = None
    subject: str | None = None


@dataclass(frozen=True)
class OutboxRow:
    key: str
    kind: str
    customer_id: str
    invoice_number: str | None
    language: str
    to_address: str
    from_address: str
    from_name: str | None
    reply_to: str | None
    subject: str
    context: dict[str, Any]
    message_id: str
    status: str
    attempts: int
    last_error: str | None
    resend_of: str | None
    created_at: datetime
    sent_at: datetime | None
    updated_at: datetime

    @property
    def sender(self) -> Sender:
        return Sender(address=self.from_address, name=self.from_name, reply_to=self.reply_to)


@dataclass(frozen=True)
class DeliveryResult:
    status: Literal["sent", "already_sent", "failed"]
    message_id: str
    error: str | None = None


@dataclass(frozen=True)
class Resend:
    """What a finance resend did; handed to the audit callback inside the transaction."""

    original_key: str  # the key finance asked to resend
    new_key: str
    resend_of: str  # the first notification of the chain (new_key's resend_of)
    customer_id: str
    to_address: str
    actor: str
    reason: str | None


AuditHook = Callable[[AsyncConnection, Resend], Awaitable[None]]

# Explicit columns, so a column added to the table later does not break OutboxRow.
_COLUMNS = sql.SQL(", ").join(sql.Identifier(f.name) for f in fields(OutboxRow))


def compose(row: OutboxRow, *, date: datetime | None = None) -> EmailMessage:
    """The message of an outbox row: body rendered from its kind, language and context."""
    rendered = render(row.kind, row.language, row.context)
    return build_message(
        sender=row.sender,
        to_address=row.to_address,
        to_name=row.context.get("customer_name") or None,
        subject=row.subject,
        text=rendered.text,
        html=rendered.html,
        message_id=row.message_id,
        date=date,
    )


async def record(conn: AsyncConnection, draft: NotificationDraft) -> OutboxRow:
    """Insert the notification unless its key exists; return the stored row either way.

    Header values are checked first: a CR/LF anywhere raises ``HeaderInjectionError`` and
    nothing is written. Runs in the caller's transaction when there is one (as a
    savepoint), else in its own; the row must be committed before ``deliver``.
    """
    if draft.kind not in KINDS:
        raise ValueError(f"unknown notification kind {draft.kind!r}")
    if draft.language not in LANGUAGES:
        raise ValueError(f"unsupported language {draft.language!r}")
    subject = draft.subject
    if subject is None:
        subject = render(draft.kind, draft.language, draft.context).subject
    check_header("Subject", subject)
    check_header("From name", draft.sender.name)
    check_header("To name", draft.context.get("customer_name"))
    to_address = check_address("To address", draft.to_address)
    from_address = check_address("From address", draft.sender.address)
    reply_to = check_address("Reply-To", draft.sender.reply_to) if draft.sender.reply_to else None
    message_id = message_id_for(draft.key, draft.sender.domain)

    async with conn.transaction():
        cur = conn.cursor(row_factory=class_row(OutboxRow))
        await cur.execute(
            sql.SQL(
                """
                INSERT INTO notifications (key, kind, customer_id, invoice_number, language,
                    to_address, from_address, from_name, reply_to, subject, context, message_id)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (key) DO NOTHING
                RETURNING {cols}
                """
            ).format(cols=_COLUMNS),
            (draft.key, draft.kind, draft.customer_id, draft.invoice_number, draft.language,
             to_address, from_address, draft.sender.name, reply_to, subject,
             Jsonb(dict(draft.context)), message_id),
        )
        row = await cur.fetchone()
        if row is None:  # recorded before (a retry or a re-run): that row wins
            row = await _select(conn, draft.key, lock=False)
    if row is None:  # only if someone deleted it between the two statements
        raise NotificationNotFound(draft.key)
    return row


async def get(conn: AsyncConnection, key: str) -> OutboxRow | None:
    return await _select(conn, key, lock=False)


async def deliver(
    db: AsyncConnectionPool | AsyncConnection,
    key: str,
    mailer: Mailer,
    *,
    date: datetime | None = None,
) -> DeliveryResult:
    """Send the notification ``key`` at most once.

    - ``sent`` row: nothing is sent, ``already_sent`` is returned;
    - ``failed`` row: nothing is sent, ``failed`` is returned with the stored error;
    - success: the row becomes ``sent`` (``sent_at``, ``attempts + 1``);
    - ``PermanentMailError`` or ``MessageBuildError``: the row becomes ``failed`` with the
      server's reply (or the reason), then the error is raised (non-retryable);
    - ``TransientMailError`` (or anything unexpected): ``attempts + 1`` and ``last_error``
      are stored, the row stays ``pending``, the error is raised (retry with backoff).

    Pass a pool (or a connection not inside a transaction): the status must be committed
    before this returns, and the row lock must not outlive the send.
    """
    failure: BaseException | None = None
    async with _connection(db) as conn, conn.transaction():
        row = await _select(conn, key, lock=True)
        if row is None:
            raise NotificationNotFound(f"no notification with key {key!r}")
        if row.status == "sent":
            return DeliveryResult("already_sent", row.message_id)
        if row.status == "failed":
            return DeliveryResult("failed", row.message_id, row.last_error)
        try:
            message = compose(row, date=date)
            await mailer.send(message)
        except (PermanentMailError, MessageBuildError) as exc:
            await _mark(conn, key, "failed", str(exc))
            failure = exc
        except TransientMailError as exc:
            await _mark(conn, key, "pending", str(exc))
            failure = exc
        except Exception as exc:  # a bug or an unexpected library error: keep a trace
            await _mark(conn, key, "pending", f"{type(exc).__name__}: {exc}")
            failure = exc
        else:
            await _mark(conn, key, "sent", None)
    # Raised only now, after the commit: inside the block it would roll the status back.
    if failure is not None:
        raise failure
    return DeliveryResult("sent", row.message_id)


async def resend(
    conn: AsyncConnection,
    key: str,
    actor: str,
    reason: str | None = None,
    *,
    audit: AuditHook | None = None,
    to_address: str | None = None,
) -> str:
    """Record a finance resend of ``key`` under a new key; returns the new key.

    The new row copies subject, sender and context, gets a new Message-ID and goes to
    ``to_address``, else the customer's current email (a resend usually follows an address
    fix), else the original address. Keys are ``<first key>:resend:<n>``. ``audit`` is
    awaited in the same transaction (SPEC 2.7); the caller then runs ``deliver(new_key)``.
    """
    if not actor or not actor.strip():
        raise ValueError("a resend needs an actor")
    async with conn.transaction():
        original = await _select(conn, key, lock=True)
        if original is None:
            raise NotificationNotFound(f"no notification with key {key!r}")
        root = original.resend_of or original.key
        if root != key:
            # All resends of a chain are numbered from its first row: lock it to serialize.
            await _select(conn, root, lock=True)
        cur = await conn.execute(
            "SELECT count(*) FROM notifications WHERE resend_of = %s", (root,)
        )
        count_row = await cur.fetchone()
        number = int(count_row[0]) + 1 if count_row else 1
        new_key = f"{root}:resend:{number}"
        while await _select(conn, new_key, lock=False) is not None:
            number += 1
            new_key = f"{root}:resend:{number}"

        address = to_address
        if address is None:
            cur = await conn.execute(
                "SELECT email FROM customers WHERE id = %s", (original.customer_id,)
            )
            customer = await cur.fetchone()
            address = customer[0] if customer else original.to_address
        address = check_address("To address", address)

        await conn.execute(
            """
            INSERT INTO notifications (key, kind, customer_id, invoice_number, language,
                to_address, from_address, from_name, reply_to, subject, context, message_id,
                resend_of)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            """,
            (new_key, original.kind, original.customer_id, original.invoice_number,
             original.language, address, original.from_address, original.from_name,
             original.reply_to, original.subject, Jsonb(original.context),
             message_id_for(new_key, original.sender.domain), root),
        )
        if audit is not None:
            await audit(
                conn,
                Resend(original_key=key, new_key=new_key, resend_of=root,
                       customer_id=original.customer_id, to_address=address,
                       actor=actor, reason=reason),
            )
    return new_key


# ---------------------------------------------------------------------------- internals


@asynccontextmanager
async def _connection(db: AsyncConnectionPool | AsyncConnection) -> AsyncIterator[AsyncConnection]:
    if isinstance(db, AsyncConnectionPool):
        async with db.connection() as conn:
            yield conn
    else:
        yield db


async def _select(conn: AsyncConnection, key: str, *, lock: bool) -> OutboxRow | None:
    query = sql.SQL("SELECT {cols} FROM notifications WHERE key = %s{lock}").format(
        cols=_COLUMNS, lock=sql.SQL(" FOR UPDATE" if lock else "")
    )
    cur = conn.cursor(row_factory=class_row(OutboxRow))
    await cur.execute(query, (key,))
    return await cur.fetchone()


async def _mark(conn: AsyncConnection, key: str, status: Status, error: str | None) -> None:
    await conn.execute(
        """
        UPDATE notifications
           SET status = %s,
               attempts = attempts + 1,
               last_error = coalesce(%s, last_error),
               sent_at = CASE WHEN %s = 'sent' THEN now() ELSE sent_at END
         WHERE key = %s
        """,
        (status, error, status, key),
    )
