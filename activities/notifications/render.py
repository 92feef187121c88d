"""Mail templates -> subject, plain text and HTML (SPEC 2.6).

Templates live in ``templates/<language>/<kind>.{subject.txt,txt,html}`` and extend the
language's ``_layout.txt`` / ``_layout.html``. Every template is rendered with the same
variable set, ``CONTEXT_VARIABLES``: ``build_context`` always returns all of them (``""``
where a kind has nothing to say), and ``StrictUndefined`` turns a typo in a template into
an error instead of a silently empty line in a customer's inbox.

Money and dates reach the templates pre-formatted for the locale (Babel), so templates
never do arithmetic or formatting and the outbox can store the context as plain strings.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cache, lru_cache
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date
from babel.numbers import parse_pattern
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from domain.money import currency, to_decimal
from domain.notifications.catalog import NOTIFICATION_KINDS as KINDS
from templates import TEMPLATES_DIR

LANGUAGES: tuple[str, ...] = ("en", "es", "pt-BR")
DEFAULT_LANGUAGE = "en"
PARTS: tuple[str, ...] = ("subject.txt", "txt", "html")

# The one variable set every template of every kind and language is rendered with.
CONTEXT_VARIABLES: frozenset[str] = frozenset(
    {
        "customer_name",
        "customer_id",  # shown as the account number to quote when paying
        "company_name",  # the class's From name, else the company default
        "contact_email",  # Reply-To, else the From address
        "invoice_number",
        "issue_date",
        "due_date",  # last day to pay: the day before D when D is a local midnight
        "suspension_date",
        "new_charges",
        "previous_balance",  # "" when zero
        "amount_due",
        "remaining",
        "payment_amount",
        "payment_date",
        "balance",  # outstanding balance of the customer; "" when nothing is owed
        "credit",  # unapplied credit of the customer; "" when none
        "fee_amount",  # the late fee charged on the invoice (SPEC 2.9); "" when none
    }
)

# Our language tags -> Babel locales. "es" is CLDR's generic Spanish ("15,00 US$").
_BABEL_LOCALES: dict[str, str] = {"en": "en", "es": "es", "pt-BR": "pt_BR"}


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def choose_language(customer_language: str | None, class_language: str | None) -> str:
    """The customer's language, else the class default, else ``en`` (SPEC 2.6).

    Tags are matched case-insensitively with ``_`` or ``-``; a regional variant we do not
    have falls back to the one we have for that language (``es-MX`` -> ``es``,
    ``pt``/``pt-PT`` -> ``pt-BR``) before falling through to the next candidate.
    """
    for candidate in (customer_language, class_language):
        supported = _supported_language(candidate)
        if supported is not None:
            return supported
    return DEFAULT_LANGUAGE


def _supported_language(tag: str | None) -> str | None:
    if not tag or not tag.strip():
        return None
    wanted = tag.strip().replace("_", "-").lower()
    for language in LANGUAGES:
        if wanted == language.lower():
            return language
    primary = wanted.split("-", 1)[0]
    for language in LANGUAGES:
        if language.lower().split("-", 1)[0] == primary:
            return language
    return None


@cache
def environment() -> Environment:
    """The Jinja2 environment: HTML autoescaped by file extension, text never escaped."""
    return Environment(
        loader=FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=select_autoescape(
            enabled_extensions=("html",), default_for_string=False, default=False
        ),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )


def template_name(kind: str, language: str, part: str) -> str:
    return f"{language}/{kind}.{part}"


def render(kind: str, language: str, context: Mapping[str, str]) -> Rendered:
    """Render one notification. ``context`` must hold every name in ``CONTEXT_VARIABLES``.

    The subject is stripped but not otherwise cleaned: a CR/LF smuggled in through a
    variable must reach the header check in ``message.build_message`` and be refused there,
    not be quietly folded into a space.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown notification kind {kind!r}; expected one of {KINDS}")
    if language not in LANGUAGES:
        raise ValueError(f"unsupported language {language!r}; expected one of {LANGUAGES}")
    missing = CONTEXT_VARIABLES - context.keys()
    if missing:
        raise ValueError(f"notification context is missing {sorted(missing)}")
    items = tuple(sorted(context.items()))
    try:
        return _render(kind, language, items)
    except TypeError:  # a value that cannot be a cache key: render it uncached
        return _render.__wrapped__(kind, language, items)


@lru_cache(maxsize=256)
def _render(kind: str, language: str, items: tuple[tuple[str, str], ...]) -> Rendered:
    """Rendering is a pure function of the templates and the context, and a mail is
    rendered twice in the same activity: when it is recorded (for its subject) and when
    it is sent. The second one is a cache hit."""
    env = environment()
    values = dict(items)
    subject = env.get_template(template_name(kind, language, "subject.txt")).render(values)
    text = env.get_template(template_name(kind, language, "txt")).render(values)
    html = env.get_template(template_name(kind, language, "html")).render(values)
    return Rendered(subject=subject.strip(), text=_tidy_text(text), html=html)


def _tidy_text(text: str) -> str:
    # Optional lines ({% if %}) leave blank runs behind; keep at most one blank line.
    lines = [line.rstrip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n") + "\n"


# --------------------------------------------------------------------------- formatting


def babel_locale(language: str) -> Locale:
    if language not in _BABEL_LOCALES:
        raise ValueError(f"unsupported language {language!r}; expected one of {LANGUAGES}")
    return Locale.parse(_BABEL_LOCALES[language])


def format_money(minor: int, currency_code: str, language: str) -> str:
    """``1500, "BRL", "pt-BR"`` -> ``"R$\\xa015,00"`` (CLDR uses a no-break space).

    Decimal places come from ISO 4217 (``domain.money``), not from CLDR, which differs for a
    few currencies (IQD, for one): an amount must show exactly the minor units it has.
    """
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise TypeError(f"amounts are integer minor units, got {minor!r}")
    cur = currency(currency_code)
    locale = babel_locale(language)
    pattern = copy.copy(parse_pattern(locale.currency_formats["standard"].pattern))
    pattern.frac_prec = (cur.exponent, cur.exponent)
    value: Decimal = to_decimal(minor, cur)
    return pattern.apply(value, locale, currency=cur.code, currency_digits=False)


def format_day(day: date, language: str) -> str:
    """Long date for the locale: en "June 15, 2026", es "15 de junio de 2026"."""
    return format_date(day, format="long", locale=babel_locale(language))


def local_date(instant: datetime, timezone: str) -> date:
    if instant.tzinfo is None:
        raise ValueError("instants must be timezone-aware")
    return instant.astimezone(ZoneInfo(timezone)).date()


def due_day(overdue_at: datetime, timezone: str) -> date:
    """The last day to pay, as a customer reads it.

    ``overdue_at`` is D, the instant the invoice becomes overdue: the midnight after the
    due date when the due date was given as a date. The day of the instant just before D
    is therefore the due date itself (and the right day for a due instant such as 17:00).
    """
    return local_date(overdue_at - timedelta(microseconds=1), timezone)


def build_context(
    *,
    language: str,
    currency_code: str,
    timezone: str = "UTC",
    customer_id: str,
    customer_name: str,
    company_name: str,
    contact_email: str,
    invoice_number: str | None = None,
    issued_at: datetime | None = None,
    overdue_at: datetime | None = None,
    suspend_at: datetime | None = None,
    new_charges: int | None = None,
    amount_due: int | None = None,
    remaining: int | None = None,
    payment_amount: int | None = None,
    paid_at: datetime | None = None,
    balance: int | None = None,
    fee_amount: int | None = None,
) -> dict[str, str]:
    """Every template variable, formatted for ``language`` with dates in ``timezone``.

    Amounts are integer minor units of ``currency_code``; instants are aware datetimes.
    Anything not given becomes ``""`` (templates test it with ``{% if %}``). Summary
    amounts are ``""`` when zero so templates can leave the line out: ``previous_balance``
    (``amount_due - new_charges``, negative when credit was applied), ``balance`` (only
    what is owed) and ``credit`` (``-balance`` when the customer is in credit).
    ``suspend_at`` should be None when no suspension lies ahead (an overdue notice sent at
    the moment of suspension then says nothing about a future date).
    """

    tz = timezone

    def money(minor: int | None) -> str:
        return "" if minor is None else format_money(minor, currency_code, language)

    def day(instant: datetime | None) -> str:
        return "" if instant is None else format_day(local_date(instant, timezone), language)

    previous = None
    if amount_due is not None and new_charges is not None and amount_due != new_charges:
        previous = amount_due - new_charges
    owed = credit = None
    if balance is not None and balance > 0:
        owed = balance
    elif balance is not None and balance < 0:
        credit = -balance
    return {
        "customer_name": customer_name,
        "customer_id": customer_id,
        "company_name": company_name,
        "contact_email": contact_email,
        "invoice_number": invoice_number or "",
        "issue_date": day(issued_at),
        "due_date": "" if overdue_at is None else format_day(due_day(overdue_at, tz), language),
        "suspension_date": day(suspend_at),
        "new_charges": money(new_charges),
        "previous_balance": money(previous),
        "amount_due": money(amount_due),
        "remaining": money(remaining),
        "payment_amount": money(payment_amount),
        "payment_date": day(paid_at),
        "balance": money(owed),
        "credit": money(credit),
        "fee_amount": money(fee_amount),
    }
