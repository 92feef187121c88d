"""Money and dates in the reader's locale (en, es, pt-BR), with the Babel formatting the
mails use (``activities.notifications.render``), so a figure reads the same in the
console as in the customer's inbox."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime

from activities.notifications.render import babel_locale, due_day, format_money
from domain.money import MoneyError, currency, parse_amount


def money(minor: int | None, currency_code: str, language: str) -> str:
    if minor is None:
        return ""
    return format_money(int(minor), currency_code, language)


def money_text(text: str, currency_code: str, language: str) -> str:
    """A decimal string of the currency (as the operations' documents carry amounts). An
    amount as a processor sent it (an unmatched payment's) may not be valid money: then it
    is shown as received."""
    try:
        minor = parse_amount(text, currency(currency_code))
    except (MoneyError, ValueError):
        return f"{text} {currency_code}"
    return format_money(minor, currency_code, language)


def when(instant: datetime | None, language: str, timezone: str = "UTC") -> str:
    """``Jun 15, 2026, 9:30:00 AM UTC`` (en), ``15 jun 2026, 9:30:00 UTC`` (es)…"""
    if instant is None:
        return ""
    zone = ZoneInfo(timezone)
    text = format_datetime(instant, format="medium", tzinfo=zone, locale=babel_locale(language))
    return f"{text} {timezone}"


def day(value: date | None, language: str) -> str:
    if value is None:
        return ""
    return format_date(value, format="medium", locale=babel_locale(language))


def due(overdue_at: datetime, timezone: str, language: str) -> str:
    """The last day to pay as the customer's mails say it (the day before D when D is a
    local midnight), in the reader's locale."""
    return day(due_day(overdue_at, timezone), language)
