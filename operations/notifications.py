"""Operators and the outbox: list, resend (audited, new key), preview without sending."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

from psycopg import AsyncConnection

from activities.notifications import outbox
from activities.notifications.mailer import SmtpConfig, SmtpMailer
from activities.notifications.message import Sender, sender_for
from activities.notifications.preview import preview as build_preview
from activities.notifications.preview import preview_eml, preview_text
from activities.notifications.render import KINDS, LANGUAGES
from db.audit import record_audit
from db.classes import get_class
from db.rows import AuditEntry, AuditInfo, ClassRow
from operations.context import Context
from operations.errors import NotFound, OperationError
from settings import Settings


async def list_notifications(ctx: Context, customer_id: str | None,
                             status: str | None, limit: int = 200) -> list[dict[str, Any]]:
    cur = await ctx.conn.execute(
        """
        SELECT key, kind, customer_id, invoice_number, to_address, status, attempts,
               last_error, created_at, sent_at
          FROM notifications
         WHERE (%(customer)s::text IS NULL OR customer_id = %(customer)s)
           AND (%(status)s::text IS NULL OR status = %(status)s)
         ORDER BY created_at DESC, key
         LIMIT %(limit)s
        """,
        {"customer": customer_id, "status": status, "limit": limit},
    )
    names = [c.name for c in cur.description or []]
    return [dict(zip(names, row, strict=True)) for row in await cur.fetchall()]


async def resend(ctx: Context, key: str, audit: AuditInfo) -> dict[str, Any]:
    """Record the resend under a new key with its audit record, then deliver it once."""

    async def write_audit(conn: AsyncConnection, done: outbox.Resend) -> None:
        await record_audit(conn, AuditEntry.of(
            audit, "notification.resend", f"notification:{key}",
            on_behalf_of=done.customer_id,
            after={"new_key": done.new_key, "to_address": done.to_address}))

    try:
        new_key = await outbox.resend(ctx.conn, key, audit.actor, audit.reason,
                                      audit=write_audit)
    except LookupError:
        raise NotFound(f"no notification with key {key!r}") from None
    async with SmtpMailer(SmtpConfig.from_settings(ctx.settings)) as mailer:
        try:
            result = await outbox.deliver(ctx.conn, new_key, mailer)
        except Exception as err:  # recorded in the outbox row; say it in one line
            return {"key": new_key, "status": "not sent", "error": str(err)}
    return {"key": new_key, "status": result.status, "message_id": result.message_id}


def preview_message(kind: str, language: str, klass: ClassRow | None,
                    settings: Settings) -> EmailMessage:
    """A sample of ``kind`` as the class's customers would get it; nothing is sent."""
    if kind not in KINDS:
        raise OperationError(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")
    if language not in LANGUAGES:
        raise OperationError(f"unknown language {language!r}; one of {', '.join(LANGUAGES)}")
    if klass is None:
        return build_preview(kind, language, sender=Sender.from_settings(settings))
    sender = sender_for(klass.from_name, klass.from_address, klass.reply_to,
                        Sender.from_settings(settings))
    return build_preview(kind, language, klass.name, sender=sender,
                         currency_code=klass.currency, timezone=klass.timezone)


async def preview_class(ctx: Context, class_name: str) -> ClassRow:
    klass = await get_class(ctx.conn, class_name)
    if klass is None:
        raise NotFound(f"unknown class {class_name!r}")
    return klass


__all__ = ["list_notifications", "preview_class", "preview_eml", "preview_message",
           "preview_text", "resend"]
