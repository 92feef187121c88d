"""The notification outbox: at most one email per notification key (SPEC 2.6).

``record`` writes the notification (key, sender, subject, context, Message-ID) before
anything is sent; recording the same key again returns the row already there.

Status machine::

    pending -> sending -> sent | failed | unknown
               sending -> pending (the server refused for now: transient, retried)

``deliver`` first commits a *claim*: ``pending`` -> ``sending`` with ``attempts + 1``, a
claim token and an expiry, in one autocommit ``UPDATE ... WHERE status = 'pending'
RETURNING`` (the row it returns is the message's content; only when it matches nothing is
the row read, to learn why). Then it talks to the SMTP server with no database connection
or row lock held, and records the outcome under its token: ``sent``; ``failed`` (permanent
refusal, or a message that cannot be built); ``pending`` with ``last_error`` when the
server definitely did not take the message (a 4xx reply, connection refused, lost before
DATA); ``unknown`` when it may have (connection lost or timeout during DATA). That record is
one autocommit ``UPDATE ... WHERE key = %s AND claim_token = %s``.

A crash (process or database connection) between the claim and the record leaves the
row ``sending``. The next attempt that finds it does not send: while the claim is live it
waits for the owner's result (concurrent deliveries of one key send once); once expired,
the owner is presumed dead and the row becomes ``unknown`` ("outcome unknown after a
crash"). ``failed`` and ``unknown`` rows are never sent automatically; finance lists them
(``dunning notifications list --status unknown``) and resends under a new key.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields
from datetime import datetime
from email.message import EmailMessage
from typing import Any, Literal

from psycopg import AsyncConnection, sql
from psycopg.pq import TransactionStatus
from psycopg.rows import class_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from activities.notifications.errors import (
    MessageBuildError,
    NotificationNotFound,
    OutcomeUnknownMailError,
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

Status = Literal["pending", "sending", "sent", "failed", "unknown"]

# A claimant gives up on SMTP after SEND_TIMEOUT (and records ``unknown``); its claim lives
# CLAIM_GRACE longer, for the database round trips around the send. Together they stay under
# the mail activity's start-to-close timeout (60 s), so the retry Temporal starts after a
# crashed attempt finds the claim expired and records ``unknown`` without waiting.
SEND_TIMEOUT = 45.0
CLAIM_GRACE = 10.0
# Waiting for another attempt's live claim: first look again after 20 ms, then back off.
_POLL_FIRST = 0.02
_POLL_MAX = 0.5


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
    claim_token: str | None  # the attempt that claimed it (``sending``), see ``deliver``
    claimed_at: datetime | None
    claim_expires_at: datetime | None

    @property
    def sender(self) -> Sender:
        return Sender(address=self.from_address, name=self.from_name, reply_to=self.reply_to)


@dataclass(frozen=True)
class DeliveryResult:
    status: Literal["sent", "already_sent", "failed", "unknown"]
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
        kind=row.kind,
        key=row.key,
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

    params = (draft.key, draft.kind, draft.customer_id, draft.invoice_number, draft.language,
              to_address, from_address, draft.sender.name, reply_to, subject,
              Jsonb(dict(draft.context)), message_id)
    if conn.autocommit and conn.info.transaction_status == TransactionStatus.IDLE:
        # One statement commits on its own: no BEGIN/COMMIT round trips.
        row = await _insert(conn, params)
    else:
        async with conn.transaction():
            row = await _insert(conn, params)
    if row is None:  # only if someone deleted it between the two statements
        raise NotificationNotFound(draft.key)
    return row


_INSERT = sql.SQL(
    """
    INSERT INTO notifications (key, kind, customer_id, invoice_number, language,
        to_address, from_address, from_name, reply_to, subject, context, message_id)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
    ON CONFLICT (key) DO NOTHING
    RETURNING {cols}
    """
).format(cols=_COLUMNS)


async def _insert(conn: AsyncConnection, params: tuple[Any, ...]) -> OutboxRow | None:
    cur = conn.cursor(row_factory=class_row(OutboxRow))
    await cur.execute(_INSERT, params)
    row = await cur.fetchone()
    if row is None:  # recorded before (a retry or a re-run): that row wins
        row = await _select(conn, params[0], lock=False)
    return row


async def get(conn: AsyncConnection, key: str) -> OutboxRow | None:
    return await _select(conn, key, lock=False)


def settled(row: OutboxRow) -> DeliveryResult | None:
    """What ``deliver`` returns for a row that will never be sent again (``sent``,
    ``failed``, ``unknown``), without touching the database; None while it may be."""
    if row.status == "sent":
        return DeliveryResult("already_sent", row.message_id)
    if row.status in ("failed", "unknown"):
        return DeliveryResult(row.status, row.message_id, row.last_error)  # type: ignore[arg-type]
    return None


async def deliver(
    db: AsyncConnectionPool | AsyncConnection,
    key: str,
    mailer: Mailer,
    *,
    date: datetime | None = None,
    send_timeout: float = SEND_TIMEOUT,
    claim_grace: float = CLAIM_GRACE,
) -> DeliveryResult:
    """Send the notification ``key`` at most once, even across crashes (SPEC 2.6).

    - ``sent`` row: nothing is sent, ``already_sent`` is returned;
    - ``failed`` or ``unknown`` row: nothing is sent, that status is returned with the
      stored error;
    - ``sending`` row claimed by another attempt: while its claim is live, wait for its
      outcome (concurrent deliveries of one key send once); once it has expired, its owner
      died between claim and record: the row becomes ``unknown``, nothing is sent;
    - ``pending`` row: claimed (``sending``, ``attempts + 1``) and committed, then sent with
      no connection or lock held, then the outcome is recorded:
      success -> ``sent``; ``PermanentMailError`` -> ``failed`` with the server's reply and
      the error is raised; ``TransientMailError`` (the server refused or was never
      reached) -> back to ``pending`` with ``last_error`` and the error is raised (retry);
      ``OutcomeUnknownMailError``, no answer within ``send_timeout`` or anything
      unexpected -> ``unknown`` (the server may have the message: never resent
      automatically; the unexpected error is raised, the others are returned).
    - ``MessageBuildError``: the row becomes ``failed`` under the claim, before anything is
      sent; raised.

    Pass a pool (or a connection not inside a transaction): each step must commit on its
    own. With a pool, no connection is held during the SMTP exchange. On autocommit
    connections (the product's pools) a delivery is two statements: claim and record.
    """
    token = uuid.uuid4().hex
    pause = _POLL_FIRST
    while True:
        outcome = await _claim(db, key, token, date, send_timeout + claim_grace)
        if not isinstance(outcome, _Waiting):
            break
        # Another attempt owns a live claim: its result decides; look again shortly.
        await asyncio.sleep(pause)
        pause = min(pause * 2, _POLL_MAX)
    if isinstance(outcome, DeliveryResult):
        return outcome
    row, message = outcome

    # From here until _finish: no connection, no lock (a slow server blocks nobody).
    try:
        async with asyncio.timeout(send_timeout):
            await mailer.send(message)
    except PermanentMailError as exc:
        await _finish(db, key, token, "failed", str(exc))
        raise
    except OutcomeUnknownMailError as exc:  # before TransientMailError: it is one
        await _finish(db, key, token, "unknown", str(exc))
        return DeliveryResult("unknown", row.message_id, str(exc))
    except TransientMailError as exc:
        await _finish(db, key, token, "pending", str(exc))
        raise
    except TimeoutError:
        # Our own bound, not the mailer's: where the exchange stood is not known.
        error = (f"no result from the SMTP server within {send_timeout:g} s;"
                 " the server may have accepted the message")
        await _finish(db, key, token, "unknown", error)
        return DeliveryResult("unknown", row.message_id, error)
    except Exception as exc:  # a bug or an unexpected library error: it may have gone out
        await _finish(db, key, token, "unknown", f"{type(exc).__name__}: {exc}")
        raise
    await _finish(db, key, token, "sent", None)
    return DeliveryResult("sent", row.message_id)


async def expire(conn: AsyncConnection, key: str, reason: str) -> str | None:
    """The retry window of ``key`` ended (SPEC 2.6): a ``pending`` row becomes ``failed``
    with its last error (``reason`` when it has none); a ``sending`` row whose outcome
    nobody recorded becomes ``unknown``. Returns the row's status afterwards (None: no row).
    """
    async with conn.transaction():
        await conn.execute(
            """
            UPDATE notifications
               SET status = CASE status WHEN 'pending' THEN 'failed' ELSE 'unknown' END,
                   last_error = CASE WHEN status = 'pending'
                                     THEN coalesce(last_error, %(reason)s)
                                     ELSE %(unknown)s END
             WHERE key = %(key)s AND status IN ('pending', 'sending')
            """,
            {"key": key, "reason": reason,
             "unknown": f"outcome unknown: {reason} while a delivery was in progress"},
        )
        row = await _select(conn, key, lock=False)
    return row.status if row is not None else None


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
    """A connection on which each statement commits on its own.

    The product's pools are autocommit (``db.pool``): one statement, one round trip, no
    BEGIN/COMMIT. A connection that is not autocommit gets one short transaction per use.
    """
    if isinstance(db, AsyncConnectionPool):
        async with db.connection() as conn:
            if conn.autocommit:
                yield conn
            else:
                async with conn.transaction():
                    yield conn
    elif db.autocommit:
        yield db
    else:
        async with db.transaction():
            yield db


async def _select(conn: AsyncConnection, key: str, *, lock: bool) -> OutboxRow | None:
    query = sql.SQL("SELECT {cols} FROM notifications WHERE key = %s{lock}").format(
        cols=_COLUMNS, lock=sql.SQL(" FOR UPDATE" if lock else "")
    )
    cur = conn.cursor(row_factory=class_row(OutboxRow))
    await cur.execute(query, (key,))
    return await cur.fetchone()


class _Waiting:
    """Another attempt holds a live ``sending`` claim on the key."""


_WAITING = _Waiting()

# The claim: one statement (atomic on its own, no explicit transaction), and the row it
# returns is all ``compose`` needs. Nothing matches unless the row is ``pending``.
_CLAIM = sql.SQL(
    """
    UPDATE notifications
       SET status = 'sending', attempts = attempts + 1, claim_token = %s,
           claimed_at = now(), claim_expires_at = now() + make_interval(secs => %s)
     WHERE key = %s AND status = 'pending'
    RETURNING {cols}
    """
).format(cols=_COLUMNS)

# Someone else's claim that outlived its expiry: its owner died between claim and record.
# ``claim_token`` pins the claim we looked at (the row may have moved on since).
_EXPIRE_CLAIM = """
    UPDATE notifications
       SET status = 'unknown',
           last_error = 'outcome unknown after a crash: the delivery claimed at '
                        || claimed_at || ' never recorded its result'
     WHERE key = %s AND status = 'sending' AND claim_token = %s
       AND claim_expires_at <= now()
    RETURNING last_error
"""


async def _claim(
    db: AsyncConnectionPool | AsyncConnection,
    key: str,
    token: str,
    date: datetime | None,
    claim_seconds: float,
) -> DeliveryResult | _Waiting | tuple[OutboxRow, EmailMessage]:
    """Claim the row when ``pending`` (one autocommit statement); else learn why not."""
    async with _connection(db) as conn:
        cur = conn.cursor(row_factory=class_row(OutboxRow))
        await cur.execute(_CLAIM, (token, claim_seconds, key))
        row = await cur.fetchone()
        if row is None:
            return await _why_not_pending(conn, key)
    # Claimed and committed. Composing needs no connection; a row that cannot become a
    # message is ``failed`` under our own claim, and nothing was sent.
    try:
        message = compose(row, date=date)
    except MessageBuildError as exc:
        await _finish(db, key, token, "failed", str(exc))
        raise
    return row, message


async def _why_not_pending(conn: AsyncConnection, key: str) -> DeliveryResult | _Waiting:
    """The claim matched nothing: the row is missing, settled, or someone else's claim."""
    row = await _select(conn, key, lock=False)
    if row is None:
        raise NotificationNotFound(f"no notification with key {key!r}")
    result = settled(row)
    if result is not None:
        return result
    if row.status == "sending":
        cur = await conn.execute(_EXPIRE_CLAIM, (key, row.claim_token))
        expired = await cur.fetchone()
        if expired is not None:
            return DeliveryResult("unknown", row.message_id, expired[0])
    # A live claim, or one that just moved on (released to ``pending``, recorded, or
    # declared ``unknown`` by someone else): look again.
    return _WAITING


async def _finish(
    db: AsyncConnectionPool | AsyncConnection,
    key: str,
    token: str,
    status: Status,
    error: str | None,
) -> None:
    """Record the outcome of our own claim (and of no one else's): one statement.

    If a later attempt already declared the claim ``unknown`` (we overran it), only
    ``sent`` is still recorded: it is the truth. A refusal leaves ``unknown`` alone.
    """
    allowed = ["sending", "unknown"] if status == "sent" else ["sending"]
    async with _connection(db) as conn:
        await conn.execute(
            """
            UPDATE notifications
               SET status = %s,
                   last_error = coalesce(%s, last_error),
                   sent_at = CASE WHEN %s = 'sent' THEN now() ELSE sent_at END
             WHERE key = %s AND claim_token = %s AND status = ANY(%s)
            """,
            (status, error, status, key, token, allowed),
        )
