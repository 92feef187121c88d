"""The expected charge of a subscription for a month (SPEC 2.8, consolidated view).

Rule: a subscription active for the whole month charges its fee; one that starts or ends
within the month is pro-rated by days, ``fee × charged days / days in month`` rounded
half-up to the minor unit; days up to and including ``free_until`` charge 0; nothing is
charged after the end. Amounts are ``int`` minor units of the class currency (SPEC 2.1)
and every step is integer (or ``Fraction``) arithmetic: no float anywhere.

Dates (``starts``, ``ends``, ``free_until``) and months are calendar dates in the class's
time zone. A day is one calendar day whatever its length in hours, so a DST change (a
23- or 25-hour day) does not change any day count here. Only callers that need the
month as instants (a query over timestamps) need the zone: ``month_bounds``.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from typing import Literal

# Private helpers of domain.when, reused so that "a date in the class's time zone" means
# exactly what it means for due dates (skipped midnights, the sandbox-safe UTC shortcut).
from domain.when import start_of_day, zone_of

SubscriptionStatus = Literal["active", "closed"]
STATUSES: tuple[SubscriptionStatus, ...] = ("active", "closed")


class SubscriptionInvalid(ValueError):
    """A subscription or month was refused; ``str(error)`` is a one-line user message.

    ``field`` names the input at fault (``"fee"``, ``"ends"``, ...), as
    ``db.subscriptions.SubscriptionRefused`` does, so the edge can point at it.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


# --------------------------------------------------------------------------------- months
def is_leap_year(year: int) -> bool:
    """Gregorian leap year: 2028 is, 2027 and 2100 are not, 2000 is."""
    return calendar.isleap(year)


def days_in_month(year: int, month: int) -> int:
    """28..31; February has 29 days in a leap year."""
    if not 1 <= month <= 12:
        raise ValueError(f"month must be 1..12, got {month}")
    return calendar.monthrange(year, month)[1]


_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")
_MONTH_EXAMPLE = "use YYYY-MM, e.g. 2026-05"


@dataclass(frozen=True, order=True)
class Month:
    """A calendar month; ordered chronologically (field order is year, then month)."""

    year: int
    month: int

    def __post_init__(self) -> None:
        for name in ("year", "month"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise SubscriptionInvalid(f"{name} must be an int, got {value!r}", name)
        # date's own range: every Month must have a first and a last day.
        if not 1 <= self.year <= 9999:
            raise SubscriptionInvalid(f"year must be 1..9999, got {self.year}", "year")
        if not 1 <= self.month <= 12:
            raise SubscriptionInvalid(f"month must be 1..12, got {self.month}", "month")

    @classmethod
    def parse(cls, text: str) -> Month:
        """``"2026-05"`` -> ``Month(2026, 5)``; anything else is refused with a ValueError."""
        if not isinstance(text, str):
            raise SubscriptionInvalid(f"month must be a string; {_MONTH_EXAMPLE}", "month")
        match = _MONTH.fullmatch(text.strip())
        if match is None:
            raise SubscriptionInvalid(f"month '{text}' is not understood; {_MONTH_EXAMPLE}",
                                      "month")
        year, month = int(match[1]), int(match[2])
        if not 1 <= month <= 12 or year < 1:
            raise SubscriptionInvalid(f"month '{text}' does not exist; {_MONTH_EXAMPLE}",
                                      "month")
        return cls(year, month)

    @classmethod
    def of(cls, day: date) -> Month:
        """The month a calendar date falls in."""
        return cls(day.year, day.month)

    @classmethod
    def containing(cls, instant: datetime, tz: str = "UTC") -> Month:
        """The month ``instant`` falls in, read in zone ``tz`` (the class's time zone).

        This is the consolidated view's default month ("the current month in the class's
        time zone", SPEC 2.8): 2026-03-01T03:00Z is still February in New York.
        """
        if not isinstance(instant, datetime) or instant.utcoffset() is None:
            # A naive datetime names a different instant in every zone.
            raise ValueError(f"instant must be a timezone-aware datetime, got {instant!r}")
        local = instant.astimezone(zone_of(tz))
        return cls(local.year, local.month)

    @property
    def days(self) -> int:
        return days_in_month(self.year, self.month)

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def last_day(self) -> date:
        return date(self.year, self.month, self.days)

    def dates(self) -> tuple[date, ...]:
        """Every calendar date of the month, in order."""
        first = self.first_day
        return tuple(first + timedelta(days=offset) for offset in range(self.days))

    def next(self) -> Month:
        return Month(self.year + 1, 1) if self.month == 12 else Month(self.year, self.month + 1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def month_bounds(month: Month, tz: str = "UTC") -> tuple[datetime, datetime]:
    """The month as the half-open UTC interval ``[start, end)`` of instants in zone ``tz``.

    ``start`` is the first instant of the 1st there, ``end`` that of the next month's 1st,
    taken from the tz database, so they are DST-correct (March in New York is 31 days less
    one hour long) and survive a skipped midnight. December 9999 has no next month to end
    at; it ends at the last representable instant instead.
    """
    zone = zone_of(tz)
    start = start_of_day(month.first_day, zone)
    if month == Month(9999, 12):
        return start, datetime.max.replace(tzinfo=UTC)
    return start, start_of_day(month.next().first_day, zone)


# -------------------------------------------------------------------------- subscriptions
@dataclass(frozen=True)
class Subscription:
    """One subscription of an account (SPEC 2.8); every instance is valid.

    ``fee``: monthly, int minor units of the class currency. ``starts``: first day of
    service. ``ends`` and ``free_until``: the last day (inclusive) of service and of the
    free period, as in ``db/migrations/005`` ("days before free_until (inclusive) charge
    0", "a closed one charges nothing after its end"). All three are calendar dates in
    the class's time zone.
    """

    id: str
    account_id: str
    product: str
    fee: int
    starts: date
    ends: date | None = None
    free_until: date | None = None
    status: SubscriptionStatus = "active"

    def __post_init__(self) -> None:
        # Validated on construction (as Currency is) because instances are also built
        # from stored rows and workflow payloads, not only through the edge.
        validate_subscription(self)

    @classmethod
    def build(
        cls,
        *,
        id: str,  # shadows the builtin on purpose: the SPEC's field name
        account_id: str,
        product: str,
        fee: int,
        starts: date,
        ends: date | None = None,
        free_until: date | None = None,
        status: SubscriptionStatus = "active",
    ) -> Subscription:
        """Keyword-only constructor for the edge; raises SubscriptionInvalid (ValueError)."""
        return cls(id, account_id, product, fee, starts, ends, free_until, status)


def _is_date(value: object) -> bool:
    # datetime is a date subclass, but a time of day has no meaning for these fields.
    return isinstance(value, date) and not isinstance(value, datetime)


def validate_subscription(sub: Subscription) -> None:
    """SPEC 2.8's rules for a subscription, with the messages ``db.subscriptions`` uses.

    The fee's upper bound (SPEC 2.1, 10^12 major units) needs the currency's exponent,
    which a Subscription does not carry; the edge checks it where the currency is known.
    """
    for value, what, field in ((sub.id, "subscription id", "id"),
                               (sub.account_id, "account id", "account_id"),
                               (sub.product, "product", "product")):
        if not isinstance(value, str) or not value.strip():
            raise SubscriptionInvalid(f"{what} must not be empty", field)
    if "\n" in sub.product or "\r" in sub.product:
        raise SubscriptionInvalid("product must be a single line", "product")
    if not isinstance(sub.fee, int) or isinstance(sub.fee, bool):
        raise SubscriptionInvalid(f"fee must be an integer of minor units, got {sub.fee!r}",
                                  "fee")
    if sub.fee < 0:
        raise SubscriptionInvalid("fee must not be negative", "fee")
    for name in ("starts", "ends", "free_until"):
        value = getattr(sub, name)
        if (value is not None or name == "starts") and not _is_date(value):
            raise SubscriptionInvalid(f"{name} must be a date, got {value!r}", name)
    if sub.ends is not None and sub.ends < sub.starts:
        raise SubscriptionInvalid(
            f"end {sub.ends.isoformat()} is before start {sub.starts.isoformat()}", "ends")
    if sub.status not in STATUSES:
        raise SubscriptionInvalid(f"status must be active or closed, not '{sub.status}'",
                                  "status")
    # Without an end, "nothing after its end" has no day to count from (the schema has
    # the same CHECK, subscriptions_closed_has_end).
    if sub.status == "closed" and sub.ends is None:
        raise SubscriptionInvalid("a closed subscription must have an end", "ends")
    # free_until may lie anywhere, even before starts: a bonus that ran out before the
    # service began simply frees no day.


# ------------------------------------------------------------------------------- charges
def is_active_on(sub: Subscription, day: date) -> bool:
    """In service on ``day``: from ``starts`` through ``ends``, both inclusive.

    ``ends`` is the last active day whatever the status (SPEC 2.8 "starts or ends within
    the month is pro-rated", "a closed one charges nothing after its end"); ``closed``
    adds nothing to the day count because a closed subscription always has an end.
    """
    return sub.starts <= day and (sub.ends is None or day <= sub.ends)


def is_charged_on(sub: Subscription, day: date) -> bool:
    """Active on ``day`` and past the free period (``free_until`` inclusive is free)."""
    return is_active_on(sub, day) and (sub.free_until is None or day > sub.free_until)


def _days_between(first: date, last: date) -> int:
    """Days in the inclusive range ``first..last``; 0 when it is empty."""
    return max(0, (last - first).days + 1)


def active_days(sub: Subscription, month: Month) -> int:
    """Days of ``month`` on which ``sub`` is in service, free days included."""
    first = max(month.first_day, sub.starts)
    last = month.last_day if sub.ends is None else min(month.last_day, sub.ends)
    return _days_between(first, last)


def charged_days(sub: Subscription, month: Month) -> int:
    """Days of ``month`` that are charged: in service and after ``free_until``.

    Interval arithmetic for speed; equal by construction (and by test) to the number of
    days of the month for which ``is_charged_on`` holds.
    """
    first = max(month.first_day, sub.starts)
    if sub.free_until is not None and sub.free_until >= first:
        if sub.free_until >= month.last_day:
            return 0  # also keeps free_until + 1 day from overflowing at date.max
        first = sub.free_until + timedelta(days=1)
    last = month.last_day if sub.ends is None else min(month.last_day, sub.ends)
    return _days_between(first, last)


def divide_half_up(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half-up, for numerator >= 0, denominator > 0.

    floor(n/d + 1/2) == floor((2n + d) / 2d), all in integers.
    """
    if numerator < 0 or denominator <= 0:
        raise ValueError(f"cannot round {numerator}/{denominator}: need n >= 0 and d > 0")
    return (2 * numerator + denominator) // (2 * denominator)


def expected_charge(sub: Subscription, month: Month) -> int:
    """The month's charge in minor units: ``fee × charged days / days in month``, half-up.

    A whole charged month is exactly the fee (days/days); one that starts after the month,
    ends before it, or is free throughout charges 0.
    """
    return divide_half_up(sub.fee * charged_days(sub, month), month.days)


def daily_amounts(sub: Subscription, month: Month) -> tuple[Fraction, ...]:
    """The unrounded charge of each day of the month: ``fee / days`` on charged days, else 0.

    Their sum is the unrounded month charge; ``expected_charge`` rounds that sum once (not
    each day, which would let rounding errors add up over the month).
    """
    per_day = Fraction(sub.fee, month.days)
    return tuple(per_day if is_charged_on(sub, day) else Fraction(0) for day in month.dates())


# -------------------------------------------------------------------------------- totals
@dataclass(frozen=True)
class Charge:
    """One line of the consolidated view."""

    subscription: Subscription
    charged_days: int
    amount: int


@dataclass(frozen=True)
class AccountTotal:
    account_id: str
    charges: tuple[Charge, ...]
    total: int


@dataclass(frozen=True)
class CustomerTotal:
    month: Month
    accounts: tuple[AccountTotal, ...]
    total: int


def account_total(subs: Iterable[Subscription], month: Month) -> int:
    """Sum of the rounded per-subscription charges (each line rounds on its own, so the
    total is what the lines shown add up to)."""
    return sum(expected_charge(sub, month) for sub in subs)


def customer_total(accounts: Mapping[str, Sequence[Subscription]], month: Month) -> int:
    """Sum of the account totals; ``accounts`` maps account id -> its subscriptions."""
    return consolidate(accounts, month).total


def consolidate(accounts: Mapping[str, Sequence[Subscription]], month: Month) -> CustomerTotal:
    """The consolidated view's figures, accounts and lines in the mapping's order.

    Refuses a subscription filed under another account's id: its charge would be counted
    on the wrong line of the view.
    """
    totals: list[AccountTotal] = []
    for account_id, subs in accounts.items():
        charges: list[Charge] = []
        for sub in subs:
            if sub.account_id != account_id:
                raise ValueError(f"subscription {sub.id} belongs to account {sub.account_id},"
                                 f" not {account_id}")
            charges.append(Charge(sub, charged_days(sub, month), expected_charge(sub, month)))
        totals.append(AccountTotal(account_id, tuple(charges),
                                   sum(charge.amount for charge in charges)))
    return CustomerTotal(month, tuple(totals), sum(account.total for account in totals))
