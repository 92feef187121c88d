"""Finance configures customer classes (SPEC 4.2 `dunning class set/show`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from db.classes import (
    ClassSpec,
    UpsertClassResult,
    class_spec,
    get_class,
    policy_of,
    upsert_class,
)
from db.rows import AuditInfo, ClassRow
from domain.collection.policy import format_late_fee, parse_late_fee
from domain.collection.timeline import timeline
from domain.collection.working_time import (
    Calendar,
    format_working_days,
    format_working_hours,
    parse_holiday,
    parse_holidays_csv,
    parse_working_days,
    parse_working_hours,
)
from domain.money import Currency, currency, format_amount, parse_amount
from domain.when import format_duration, overdue_instant, parse_due, parse_duration, zone_of
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
    # The past-due chain and working time (SPEC 2.9, 2.10). "none" clears a late fee or a
    # termination; holidays given (dates and a CSV's text) replace the class's holidays.
    late_fee: str | None = None
    late_fee_after: str | None = None
    terminate_after: str | None = None
    working_days: str | None = None
    working_hours: str | None = None
    holidays: tuple[str, ...] | None = None
    holidays_csv: str | None = None


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
    updates.update(_chain_and_working_time(change, currency(code)))
    return dataclasses.replace(base, **updates)


_NONE = ("none", "never", "off")


def _chain_and_working_time(change: ClassChange, cur: Currency) -> dict[str, Any]:
    """The SPEC 2.9 and 2.10 options as ClassSpec fields; each refusal names its option."""
    updates: dict[str, Any] = {}
    with _option("--late-fee"):
        if change.late_fee is not None:
            fee = (None if change.late_fee.strip().lower() in _NONE
                   else parse_late_fee(change.late_fee, cur))
            updates["late_fee_fixed"] = fee.fixed if fee else None
            updates["late_fee_basis_points"] = fee.basis_points if fee else None
    with _option("--late-fee-after"):
        if change.late_fee_after is not None:
            updates["late_fee_after_seconds"] = _seconds(change.late_fee_after)
    with _option("--terminate-after"):
        if change.terminate_after is not None:
            text = change.terminate_after.strip().lower()
            seconds = None if text in _NONE else _seconds(change.terminate_after)
            if seconds == 0:
                raise ValueError("terminate-after must be more than 0; use 'none' for never")
            updates["terminate_after_seconds"] = seconds
    with _option("--working-days"):
        if change.working_days is not None:
            updates["working_days"] = tuple(sorted(parse_working_days(change.working_days)))
    with _option("--working-hours"):
        if change.working_hours is not None:
            start, end = parse_working_hours(change.working_hours)
            updates["working_start_minute"], updates["working_end_minute"] = start, end
    holidays: set[date] = set()
    with _option("--holiday"):
        holidays.update(parse_holiday(text) for text in change.holidays or ())
    with _option("--holidays-file"):
        if change.holidays_csv is not None:
            holidays.update(parse_holidays_csv(change.holidays_csv))
    if change.holidays is not None or change.holidays_csv is not None:
        updates["holidays"] = tuple(sorted(holidays))
    return updates


@contextmanager
def _option(name: str) -> Iterator[None]:
    try:
        yield
    except ValueError as err:  # MoneyError included
        raise OperationError(f"{name}: {err}", field=name.lstrip("-").replace("-", "_")) \
            from None


async def set_class(ctx: Context, change: ClassChange, audit: AuditInfo) -> UpsertClassResult:
    existing = await get_class(ctx.conn, change.name)
    return await upsert_class(ctx.conn, _spec(change, existing), audit)


async def show_class(ctx: Context, name: str, due: str | None = None,
                     now: datetime | None = None) -> dict[str, Any]:
    """The class and its whole policy as a timeline for a sample due date: ``due`` (a date
    or an instant, as an invoice's), else two weeks from today in the class's zone."""
    row = await get_class(ctx.conn, name)
    if row is None:
        raise NotFound(f"unknown class {name!r}")
    now = now or datetime.now(UTC)
    if due is None:
        due = (now.astimezone(zone_of(row.timezone)).date() + timedelta(days=14)).isoformat()
    try:
        overdue_at = overdue_instant(parse_due(due), row.timezone)
    except ValueError as err:
        raise OperationError(f"--due: {err}", field="due") from None
    policy = policy_of(row)
    calendar = Calendar(policy.working, zone_of(row.timezone))
    return {**class_document(row), "sample": {
        "due": due, "overdue_at": overdue_at.isoformat(),
        "overdue_local": calendar.describe(overdue_at),
        "timeline": [{"step": e.key, "nominal": e.nominal.isoformat(), "at": e.at.isoformat(),
                      "local": calendar.describe(e.at), "why": e.why}
                     for e in timeline(policy, overdue_at)],
    }}


def class_text(doc: dict[str, Any]) -> str:
    """``dunning class show`` for a person: the settings, then the sample timeline."""
    sender = doc["from_name"] or doc["from_address"] or "company default"
    if doc["from_name"] and doc["from_address"]:
        sender = f"{doc['from_name']} <{doc['from_address']}>"
    fee = "none"
    if doc["late_fee"]:
        fee = f"{doc['late_fee_text']}, charged {doc['late_fee_after']} after D"
    lines = [
        f"class {doc['name']}: {doc['currency']}, threshold {doc['threshold']}, "
        f"language {doc['language']}, time zone {doc['timezone']}",
        f"  sender: {sender}" + (f", Reply-To {doc['reply_to']}" if doc["reply_to"] else "")
        + f"; payment receipts {'on' if doc['payment_receipts'] else 'off'}",
        f"  schedule: reminders {', '.join(doc['reminders']) or 'none'} before D; "
        f"grace {doc['grace']}; warning {doc['warning']} before the suspension",
        f"  late fee: {fee}",
        "  termination: " + (f"{doc['terminate_after']} after the suspension"
                             if doc["terminate_after"] else "never"),
        f"  working time: {doc['working_days']} {doc['working_hours']}; holidays: "
        + (", ".join(doc["holidays"]) or "none"),
    ]
    sample = doc.get("sample")
    if sample:
        lines.append(f"timeline of an invoice due {sample['due']} "
                     f"(D = {sample['overdue_local']}, {doc['timezone']}):")
        width = max(len(e["step"]) for e in sample["timeline"])
        when = max(len(e["local"]) for e in sample["timeline"])
        for entry in sample["timeline"]:
            line = f"  {entry['local']:>{when}}  {entry['step']:<{width}}"
            if entry["why"]:
                line += f"  {entry['why']}"
            lines.append(line.rstrip())
    return "\n".join(lines)


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
        "late_fee": format_late_fee(fee, cur) if (fee := policy_of(row).late_fee) else None,
        "late_fee_text": fee.describe(cur) if fee else None,
        "late_fee_after": _fmt(row.late_fee_after_seconds),
        "terminate_after": (None if row.terminate_after_seconds is None
                            else _fmt(row.terminate_after_seconds)),
        "working_days": format_working_days(row.working_days),
        "working_hours": format_working_hours(row.working_start_minute, row.working_end_minute),
        "holidays": [d.isoformat() for d in row.holidays],
    }


def _fmt(seconds: int) -> str:
    return format_duration(timedelta(seconds=seconds))
