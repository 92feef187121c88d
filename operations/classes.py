"""Finance configures customer classes (SPEC 4.2 `dunning class set/show`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from db.classes import ClassSpec, UpsertClassResult, class_spec, get_class, upsert_class
from db.rows import AuditInfo, ClassRow
from domain.money import currency, format_amount, parse_amount
from domain.when import format_duration, parse_duration
from operations.context import Context
from operations.errors import NotFound, OperationError


@dataclass(frozen=True)
class ClassChange:
    """Options given on the command line; None means "keep" (or the default when new)."""

    name: str
    currency: str | None = None
    threshold: str | None = None
    from_address: str | None = None
    from_name: str | None = None
    reply_to: str | None = None
    language: str | None = None
    timezone: str | None = None
    reminders: str | None = None
    grace: str | None = None
    warning: str | None = None
    payment_receipts: bool | None = None


_CLEARABLE = ("from_address", "from_name", "reply_to")


def _seconds(text: str) -> int:
    return int(parse_duration(text).total_seconds())


def _spec(change: ClassChange, existing: ClassRow | None) -> ClassSpec:
    if existing is None:
        if change.currency is None:
            raise OperationError(f"class {change.name!r} is new: --currency is required")
        base = ClassSpec(name=change.name, currency=change.currency)
    else:
        base = class_spec(existing)
    code = change.currency or base.currency
    updates: dict[str, Any] = {"currency": code}
    if change.threshold is not None:
        updates["threshold"] = parse_amount(change.threshold, currency(code))
    for name in ("from_address", "from_name", "reply_to", "language", "timezone",
                 "payment_receipts"):
        value = getattr(change, name)
        if value is not None:
            # An empty sender field on the command line clears it (back to the defaults).
            updates[name] = (value or None) if name in _CLEARABLE else value
    if change.reminders is not None:
        updates["reminders_seconds"] = tuple(
            _seconds(part) for part in change.reminders.split(",") if part.strip()
        )
    if change.grace is not None:
        updates["grace_seconds"] = _seconds(change.grace)
    if change.warning is not None:
        updates["warning_seconds"] = _seconds(change.warning)
    return dataclasses.replace(base, **updates)


async def set_class(ctx: Context, change: ClassChange, audit: AuditInfo) -> UpsertClassResult:
    existing = await get_class(ctx.conn, change.name)
    return await upsert_class(ctx.conn, _spec(change, existing), audit)


async def show_class(ctx: Context, name: str) -> dict[str, Any]:
    row = await get_class(ctx.conn, name)
    if row is None:
        raise NotFound(f"unknown class {name!r}")
    return class_document(row)


def class_document(row: ClassRow) -> dict[str, Any]:
    cur = currency(row.currency)
    return {
        "name": row.name,
        "currency": row.currency,
        "threshold": format_amount(row.threshold, cur),
        "from_address": row.from_address,
        "from_name": row.from_name,
        "reply_to": row.reply_to,
        "language": row.language,
        "timezone": row.timezone,
        "reminders": [_fmt(s) for s in row.reminders_seconds],
        "grace": _fmt(row.grace_seconds),
        "warning": _fmt(row.warning_seconds),
        "payment_receipts": row.payment_receipts,
    }


def _fmt(seconds: int) -> str:
    return format_duration(timedelta(seconds=seconds))
