"""Money and dates in the reader's locale (en, es, pt-BR), with the Babel formatting the
mails use (``activities.notifications.render``), so a figure reads the same in the
console as in the customer's inbox."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime

from activities.notifications.render import babel_locale, due_day, format_money
from domain.money import MoneyError, currency


def money(minor: int | None, currency_code: str, language: str) -> str:
    if minor is None:
        return ""
    return format_money(int(minor), currency_code, language)


def money_text(text: str, currency_code: str, language: str) -> str:
    """A decimal string of the currency, for display only: the operations' documents carry
    amounts so (``format_amount``'s output, exact to the minor unit). An unmatched
    payment's amount is text as a processor sent it: anything that is not an exact amount
    of a known currency is shown as received. (Input is never read here: payments are
    parsed in one place, ``domain.ledger.payments``.)"""
    try:
        cur = currency(currency_code)
        scaled = Decimal(text).scaleb(cur.exponent)
    except (MoneyError, ArithmeticError, ValueError):
        return f"{text} {currency_code}"
    if not scaled.is_finite() or scaled != scaled.to_integral_value():
        return f"{text} {currency_code}"
    return format_money(int(scaled), cur.code, language)


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
