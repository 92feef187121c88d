"""SPEC 2.8: the expected charge of a subscription for a month, and the view's totals."""

import ast
import sys
from datetime import UTC, date, datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from domain.subscriptions.charge import (
    Month,
    Subscription,
    SubscriptionInvalid,
    account_total,
    active_days,
    charged_days,
    consolidate,
    customer_total,
    daily_amounts,
    days_in_month,
    divide_half_up,
    expected_charge,
    is_active_on,
    is_charged_on,
    is_leap_year,
    month_bounds,
)

APRIL_2026 = Month(2026, 4)  # 30 days
MAY_2026 = Month(2026, 5)  # 31 days


def sub(
    fee: int = 3000,
    starts: date = date(2026, 1, 1),
    ends: date | None = None,
    free_until: date | None = None,
    status: str = "active",
    *,
    id: str = "s1",
    account_id: str = "a1",
    product: str = "Essentials",
) -> Subscription:
    return Subscription(id, account_id, product, fee, starts, ends, free_until, status)  # type: ignore[arg-type]


# --- the seed's example (SPEC 2.8: must hold exactly) ------------------------------------


def test_the_seeds_customer_owes_75_dollars() -> None:
    june = Month(2024, 6)
    start = date(2024, 6, 1)
    accounts = {
        "john-1": [
            sub(2000, start, id="ess-1", account_id="john-1"),
            sub(1099, start, free_until=date(2024, 6, 30), id="netflix", account_id="john-1",
                product="Netflix"),
        ],
        "john-2": [
            sub(2000, start, id="ess-2", account_id="john-2"),
            sub(1500, start, id="hbo", account_id="john-2", product="HBO"),
        ],
        "john-3": [sub(2000, start, id="ess-3", account_id="john-3")],
    }
    view = consolidate(accounts, june)
    assert [(a.account_id, a.total) for a in view.accounts] == [
        ("john-1", 2000), ("john-2", 3500), ("john-3", 2000)]
    assert [(c.subscription.id, c.charged_days, c.amount) for c in view.accounts[0].charges] == [
        ("ess-1", 30, 2000), ("netflix", 0, 0)]
    assert [account_total(subs, june) for subs in accounts.values()] == [2000, 3500, 2000]
    assert view.total == customer_total(accounts, june) == 7500  # $75.00
    # A bonus that runs past the month is just as free.
    assert expected_charge(sub(1099, start, free_until=date(2024, 9, 30)), june) == 0


# --- pro-rating, with exact figures -------------------------------------------------------


@pytest.mark.parametrize(
    ("subscription", "month", "active", "charged", "charge"),
    [
        # Whole month, with start before and end after it.
        (sub(3000, date(2025, 1, 1), date(2027, 1, 1)), APRIL_2026, 30, 30, 3000),
        (sub(3000, date(2026, 4, 1), date(2026, 4, 30)), APRIL_2026, 30, 30, 3000),
        # Starts mid-month: April 11..30 is 20 of 30 days.
        (sub(3000, date(2026, 4, 11)), APRIL_2026, 20, 20, 2000),
        # Ends mid-month, end inclusive: May 1..10 is 10 of 31 days.
        (sub(3100, date(2026, 1, 1), date(2026, 5, 10), status="closed"), MAY_2026, 10, 10, 1000),
        # Both inside the month: April 5..14.
        (sub(3000, date(2026, 4, 5), date(2026, 4, 14)), APRIL_2026, 10, 10, 1000),
        # A one-day subscription, and the first and last day of the month on their own.
        (sub(3000, date(2026, 4, 20), date(2026, 4, 20)), APRIL_2026, 1, 1, 100),
        (sub(3000, date(2026, 1, 1), date(2026, 4, 1), status="closed"), APRIL_2026, 1, 1, 100),
        (sub(3000, date(2026, 4, 30)), APRIL_2026, 1, 1, 100),
        # February 15 onwards: 15 of 29 days in leap 2028, 14 of 28 in 2027.
        (sub(2000, date(2028, 2, 15)), Month(2028, 2), 15, 15, 1034),  # 1034.48...
        (sub(2000, date(2027, 2, 15)), Month(2027, 2), 14, 14, 1000),
        (sub(2900, date(2028, 2, 29)), Month(2028, 2), 1, 1, 100),
        # Half-up, not half-even: 0.5 -> 1 and 2.5 -> 3 (banker's rounding gives 0 and 2).
        (sub(15, date(2026, 4, 30)), APRIL_2026, 1, 1, 1),
        (sub(25, date(2026, 4, 28)), APRIL_2026, 3, 3, 3),
        (sub(1000, date(2026, 5, 31)), MAY_2026, 1, 1, 32),  # 32.258... rounds down
        (sub(1000, date(2026, 5, 30)), MAY_2026, 2, 2, 65),  # 64.516... rounds up
        # Free through April 10 (inclusive): April 11..30 charged.
        (sub(3000, date(2026, 3, 1), free_until=date(2026, 4, 10)), APRIL_2026, 30, 20, 2000),
        # Free period and a mid-month start overlap: active from the 5th, charged from the 11th.
        (sub(3000, date(2026, 4, 5), free_until=date(2026, 4, 10)), APRIL_2026, 26, 20, 2000),
        # Free period and end overlap: active 1..15, free through the 10th.
        (sub(3000, date(2026, 1, 1), date(2026, 4, 15), date(2026, 4, 10), "closed"),
         APRIL_2026, 15, 5, 500),
        # A free period over before the month, or before the start, frees nothing.
        (sub(3000, date(2026, 1, 1), free_until=date(2026, 3, 31)), APRIL_2026, 30, 30, 3000),
        (sub(3000, date(2026, 4, 11), free_until=date(2026, 1, 31)), APRIL_2026, 20, 20, 2000),
        # Free through the last day: nothing, even from an active subscription.
        (sub(3000, date(2026, 1, 1), free_until=date(2026, 4, 30)), APRIL_2026, 30, 0, 0),
        # Closed before the month, or starting after it: nothing.
        (sub(3000, date(2026, 1, 1), date(2026, 3, 31), status="closed"), APRIL_2026, 0, 0, 0),
        (sub(3000, date(2026, 5, 1)), APRIL_2026, 0, 0, 0),
        # A zero fee charges zero.
        (sub(0, date(2026, 1, 1)), APRIL_2026, 30, 30, 0),
    ],
)
def test_expected_charge(
    subscription: Subscription, month: Month, active: int, charged: int, charge: int
) -> None:
    assert active_days(subscription, month) == active
    assert charged_days(subscription, month) == charged
    assert expected_charge(subscription, month) == charge


def test_an_end_in_the_future_does_not_charge_the_following_month() -> None:
    ending = sub(3000, date(2026, 1, 1), date(2026, 4, 15))
    assert expected_charge(ending, APRIL_2026) == 1500
    assert expected_charge(ending, MAY_2026) == 0


def test_free_until_at_the_end_of_time_does_not_overflow() -> None:
    forever = sub(3000, date(2026, 1, 1), free_until=date.max)
    assert expected_charge(forever, Month(9999, 12)) == 0


def test_huge_fees_stay_exact() -> None:
    # 10^12 major units of a 3-decimal currency: floats would lose the last digits.
    fee = 10**15
    assert expected_charge(sub(fee, date(2026, 5, 31)), MAY_2026) == 32_258_064_516_129


def test_divide_half_up() -> None:
    assert [divide_half_up(n, 4) for n in range(9)] == [0, 0, 1, 1, 1, 1, 2, 2, 2]
    with pytest.raises(ValueError, match="need n >= 0 and d > 0"):
        divide_half_up(-1, 2)
    with pytest.raises(ValueError, match="need n >= 0 and d > 0"):
        divide_half_up(1, 0)


def test_the_per_day_rules() -> None:
    s = sub(3000, date(2026, 4, 5), date(2026, 4, 20), free_until=date(2026, 4, 10))
    assert [is_active_on(s, date(2026, 4, d)) for d in (4, 5, 20, 21)] == [
        False, True, True, False]
    assert [is_charged_on(s, date(2026, 4, d)) for d in (5, 10, 11, 20, 21)] == [
        False, False, True, True, False]
    amounts = daily_amounts(s, APRIL_2026)
    assert len(amounts) == 30
    assert amounts[9] == 0 and amounts[10] == Fraction(3000, 30) == 100
    assert sum(amounts) == 1000


def test_consolidate_refuses_a_subscription_under_another_account() -> None:
    with pytest.raises(ValueError, match="subscription s1 belongs to account a1, not a2"):
        consolidate({"a2": [sub()]}, APRIL_2026)


def test_an_empty_customer_owes_nothing() -> None:
    assert customer_total({}, APRIL_2026) == 0
    assert customer_total({"a1": []}, APRIL_2026) == 0


# --- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message", "field"),
    [
        ({"fee": -1}, "fee must not be negative", "fee"),
        ({"fee": 10.5}, "fee must be an integer of minor units, got 10.5", "fee"),
        ({"fee": "2000"}, "fee must be an integer of minor units, got '2000'", "fee"),
        ({"fee": True}, "fee must be an integer of minor units, got True", "fee"),
        ({"starts": date(2026, 2, 1), "ends": date(2026, 1, 1)},
         "end 2026-01-01 is before start 2026-02-01", "ends"),
        ({"status": "closed"}, "a closed subscription must have an end", "ends"),
        ({"status": "suspended"}, "status must be active or closed, not 'suspended'", "status"),
        ({"starts": "2026-01-01"}, "starts must be a date, got '2026-01-01'", "starts"),
        ({"starts": None}, "starts must be a date, got None", "starts"),
        ({"ends": datetime(2026, 3, 1, tzinfo=UTC)}, "ends must be a date, got datetime", "ends"),
        ({"free_until": 20260301}, "free_until must be a date, got 20260301", "free_until"),
        ({"id": " "}, "subscription id must not be empty", "id"),
        ({"account_id": ""}, "account id must not be empty", "account_id"),
        ({"product": ""}, "product must not be empty", "product"),
        ({"product": "HBO\nMax"}, "product must be a single line", "product"),
    ],
)
def test_validation(changes: dict[str, object], message: str, field: str) -> None:
    fields: dict[str, object] = {"id": "s1", "account_id": "a1", "product": "Essentials",
                                 "fee": 2000, "starts": date(2026, 1, 1)}
    fields.update(changes)
    with pytest.raises(SubscriptionInvalid) as refused:
        Subscription.build(**fields)  # type: ignore[arg-type]
    assert str(refused.value).startswith(message)
    assert refused.value.field == field
    assert isinstance(refused.value, ValueError)  # what the edges catch


def test_build_accepts_the_edge_cases() -> None:
    one_day = Subscription.build(id="s", account_id="a", product="P", fee=0,
                                 starts=date(2026, 1, 1), ends=date(2026, 1, 1),
                                 free_until=date(2020, 1, 1), status="closed")
    assert one_day == Subscription("s", "a", "P", 0, date(2026, 1, 1), date(2026, 1, 1),
                                   date(2020, 1, 1), "closed")


# --- months --------------------------------------------------------------------------------


def test_days_in_month_and_leap_years() -> None:
    assert [days_in_month(2026, m) for m in range(1, 13)] == [
        31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    assert (days_in_month(2028, 2), days_in_month(2027, 2)) == (29, 28)
    assert [is_leap_year(y) for y in (2028, 2027, 2100, 2000)] == [True, False, False, True]
    assert (Month(2028, 2).days, Month(2028, 2).last_day) == (29, date(2028, 2, 29))
    with pytest.raises(ValueError, match="month must be 1..12, got 13"):
        days_in_month(2026, 13)


@pytest.mark.parametrize(
    ("text", "month"),
    [("2026-05", Month(2026, 5)), (" 2026-12 ", Month(2026, 12)), ("0001-01", Month(1, 1))],
)
def test_month_parse(text: str, month: Month) -> None:
    assert Month.parse(text) == month
    assert str(month) == text.strip()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-13", "month '2026-13' does not exist; use YYYY-MM, e.g. 2026-05"),
        ("2026-00", "month '2026-00' does not exist"),
        ("0000-01", "month '0000-01' does not exist"),
        ("2026-5", "month '2026-5' is not understood; use YYYY-MM, e.g. 2026-05"),
        ("2026-05-01", "month '2026-05-01' is not understood"),
        ("May 2026", "month 'May 2026' is not understood"),
        ("", "month '' is not understood"),
        ("２０２６-０５", "month '２０２６-０５' is not understood"),  # full-width digits are not [0-9]
    ],
)
def test_month_parse_refusals(text: str, message: str) -> None:
    with pytest.raises(ValueError) as refused:
        Month.parse(text)
    assert str(refused.value).startswith(message)


def test_month_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="month must be a string"):
        Month.parse(202605)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="month must be 1..12, got 0"):
        Month(2026, 0)
    with pytest.raises(ValueError, match="year must be 1..9999"):
        Month(10000, 1)
    with pytest.raises(ValueError, match="month must be an int"):
        Month(2026, "5")  # type: ignore[arg-type]


def test_month_order_and_next() -> None:
    assert Month(2026, 12).next() == Month(2027, 1)
    assert Month(2026, 4).next() == Month(2026, 5)
    assert Month(2025, 12) < Month(2026, 1) < Month(2026, 2)
    assert Month.of(date(2028, 2, 29)) == Month(2028, 2)


@pytest.mark.parametrize(
    ("instant", "tz", "month"),
    [
        # 22:00 on Feb 28 in New York (EST, -5) ...
        ("2026-03-01T03:00:00Z", "America/New_York", Month(2026, 2)),
        ("2026-03-01T04:59:59Z", "America/New_York", Month(2026, 2)),
        # ... and March from local midnight, 05:00Z.
        ("2026-03-01T05:00:00Z", "America/New_York", Month(2026, 3)),
        ("2026-03-01T03:00:00Z", "UTC", Month(2026, 3)),
        # November 1 2026 is also the day DST ends in New York (02:00 EDT -> 01:00 EST,
        # 06:00Z): the month still begins at midnight EDT, 04:00Z.
        ("2026-11-01T03:59:59Z", "America/New_York", Month(2026, 10)),
        ("2026-11-01T04:00:00Z", "America/New_York", Month(2026, 11)),
        ("2026-11-01T06:30:00Z", "America/New_York", Month(2026, 11)),  # the repeated hour
        # Across the spring-forward jump (2026-03-08 07:00Z) the month does not move.
        ("2026-03-08T06:59:59Z", "America/New_York", Month(2026, 3)),
        ("2026-03-08T07:00:00Z", "America/New_York", Month(2026, 3)),
        # Sao Paulo (-3, no DST since 2019).
        ("2026-03-01T02:59:59Z", "America/Sao_Paulo", Month(2026, 2)),
        ("2026-03-01T03:00:00Z", "America/Sao_Paulo", Month(2026, 3)),
        # East of UTC the month starts early: Auckland is +13 (NZDT) on March 31.
        ("2026-03-31T10:59:59Z", "Pacific/Auckland", Month(2026, 3)),
        ("2026-03-31T11:00:00Z", "Pacific/Auckland", Month(2026, 4)),
        # New Year's Eve in New York is already January in UTC.
        ("2027-01-01T04:59:59Z", "America/New_York", Month(2026, 12)),
    ],
)
def test_month_containing(instant: str, tz: str, month: Month) -> None:
    assert Month.containing(datetime.fromisoformat(instant), tz) == month


def test_month_containing_reads_any_offset_and_refuses_naive_times() -> None:
    # The offset written with the instant does not matter, only the zone asked for.
    at = datetime(2026, 2, 28, 22, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert Month.containing(at, "UTC") == Month(2026, 3)
    assert Month.containing(at, "America/New_York") == Month(2026, 2)
    with pytest.raises(ValueError, match="timezone-aware"):
        Month.containing(datetime(2026, 3, 1), "UTC")
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        Month.containing(at, "Mars/Olympus")


def test_month_bounds_are_dst_correct() -> None:
    march = month_bounds(Month(2026, 3), "America/New_York")
    assert march == (datetime(2026, 3, 1, 5, tzinfo=UTC), datetime(2026, 4, 1, 4, tzinfo=UTC))
    assert march[1] - march[0] == timedelta(days=31, hours=-1)  # spring forward
    november = month_bounds(Month(2026, 11), "America/New_York")
    assert november[1] - november[0] == timedelta(days=30, hours=1)  # fall back
    assert month_bounds(Month(2028, 2)) == (datetime(2028, 2, 1, tzinfo=UTC),
                                            datetime(2028, 3, 1, tzinfo=UTC))
    # ...while the charge counts calendar days: March is 31 days whatever its hours.
    assert Month(2026, 3).days == 31
    assert month_bounds(Month(9999, 12))[1] == datetime.max.replace(tzinfo=UTC)


# --- properties ----------------------------------------------------------------------------

months = st.builds(Month, st.integers(1990, 2100), st.integers(1, 12))
fees = st.integers(0, 10**15)
ZONES = ["UTC", "America/New_York", "America/Sao_Paulo", "Europe/London", "Pacific/Auckland",
         "America/Santiago", "Australia/Lord_Howe", "Asia/Kathmandu"]


@st.composite
def subscription_and_month(draw: st.DrawFn) -> tuple[Subscription, Month]:
    """A subscription whose dates fall around the month, so every overlap case occurs."""
    month = draw(months)
    first = month.first_day
    starts = first + timedelta(days=draw(st.integers(-70, 40)))
    ends = draw(st.none() | st.integers(0, 100).map(lambda n: starts + timedelta(days=n)))
    free_until = draw(st.none() | st.integers(-70, 70).map(lambda n: first + timedelta(days=n)))
    status = draw(st.sampled_from(["active", "closed"])) if ends is not None else "active"
    fee = draw(fees)
    return sub(fee, starts, ends, free_until, status), month


@given(fees, months)
def test_a_whole_month_without_free_days_charges_the_fee(fee: int, month: Month) -> None:
    whole = sub(fee, month.first_day, month.last_day)
    assert charged_days(whole, month) == month.days
    assert expected_charge(whole, month) == fee
    assert sum(daily_amounts(whole, month)) == fee


@given(fees, months)
def test_single_day_charges_add_up_to_the_month(fee: int, month: Month) -> None:
    # One subscription per day of the month, each active on that day alone: their unrounded
    # charges add up to exactly one month's fee, so pro-rating neither gains nor loses.
    singles = [sub(fee, day, day) for day in month.dates()]
    assert all(charged_days(s, month) == 1 for s in singles)
    assert sum(sum(daily_amounts(s, month)) for s in singles) == fee


@given(fees, months, st.integers(1, 31))
def test_starting_on_day_k_charges_the_remaining_days(fee: int, month: Month, k: int) -> None:
    assume(k <= month.days)
    started = sub(fee, month.first_day + timedelta(days=k - 1))
    assert charged_days(started, month) == month.days - k + 1
    assert sum(daily_amounts(started, month)) == Fraction(fee * (month.days - k + 1), month.days)
    # Before k the days are those of a subscription that ended on day k - 1: together, a fee.
    if k > 1:
        ended = sub(fee, month.first_day, month.first_day + timedelta(days=k - 2), status="closed")
        assert sum(daily_amounts(started, month)) + sum(daily_amounts(ended, month)) == fee
        # Rounded separately the two parts are off from the fee by at most one minor unit.
        assert abs(expected_charge(started, month) + expected_charge(ended, month) - fee) <= 1


@given(subscription_and_month())
def test_the_charge_is_the_rounded_sum_of_the_daily_amounts(case: tuple[Subscription, Month]) -> None:
    s, month = case
    days = month.dates()
    assert charged_days(s, month) == sum(is_charged_on(s, day) for day in days)
    assert active_days(s, month) == sum(is_active_on(s, day) for day in days)
    assert charged_days(s, month) <= active_days(s, month)
    unrounded = sum(daily_amounts(s, month), Fraction(0))
    assert unrounded == Fraction(s.fee * charged_days(s, month), month.days)
    # Half-up: floor(x + 1/2).
    assert expected_charge(s, month) == (unrounded + Fraction(1, 2)).__floor__()
    assert abs(expected_charge(s, month) - unrounded) <= Fraction(1, 2)


@given(subscription_and_month())
def test_the_charge_is_between_zero_and_the_fee(case: tuple[Subscription, Month]) -> None:
    s, month = case
    assert 0 <= expected_charge(s, month) <= s.fee
    assert isinstance(expected_charge(s, month), int)


@given(subscription_and_month(), st.integers(0, 400))
def test_a_free_period_covering_the_month_never_charges(
    case: tuple[Subscription, Month], beyond: int
) -> None:
    s, month = case
    free = sub(s.fee, s.starts, s.ends, month.last_day + timedelta(days=beyond), s.status)
    assert expected_charge(free, month) == 0
    assert sum(daily_amounts(free, month)) == 0


@given(subscription_and_month())
def test_nothing_is_charged_outside_the_service_period(case: tuple[Subscription, Month]) -> None:
    s, month = case
    if s.starts > month.last_day or (s.ends is not None and s.ends < month.first_day):
        assert active_days(s, month) == 0
        assert expected_charge(s, month) == 0


@given(
    months,
    st.lists(st.lists(subscription_and_month(), max_size=5), max_size=5),
)
def test_the_customer_total_is_the_sum_of_the_account_totals(
    month: Month, drawn: list[list[tuple[Subscription, Month]]]
) -> None:
    accounts = {
        f"acc-{a}": [sub(s.fee, s.starts, s.ends, s.free_until, s.status, id=f"s-{a}-{i}",
                         account_id=f"acc-{a}") for i, (s, _) in enumerate(subs)]
        for a, subs in enumerate(drawn)
    }
    view = consolidate(accounts, month)
    totals = [account_total(subs, month) for subs in accounts.values()]
    assert [account.total for account in view.accounts] == totals
    assert customer_total(accounts, month) == view.total == sum(totals)
    assert view.total == sum(expected_charge(s, month) for subs in accounts.values() for s in subs)


@given(months, st.sampled_from(ZONES))
def test_month_bounds_chain_and_contain_their_month(month: Month, tz: str) -> None:
    start, end = month_bounds(month, tz)
    assert start < end and start.tzinfo is UTC and end.tzinfo is UTC
    assert Month.containing(start, tz) == month
    assert Month.containing(end - timedelta(microseconds=1), tz) == month
    assert Month.containing(start - timedelta(microseconds=1), tz) < month
    if month < Month(9999, 12):
        assert month_bounds(month.next(), tz)[0] == end
        assert Month.containing(end, tz) == month.next()


@given(st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 12, 31),
                    timezones=st.just(UTC)), st.sampled_from(ZONES))
def test_every_instant_lies_within_the_bounds_of_its_month(instant: datetime, tz: str) -> None:
    start, end = month_bounds(Month.containing(instant, tz), tz)
    assert start <= instant < end


# --- purity --------------------------------------------------------------------------------


def test_the_package_imports_only_the_standard_library() -> None:
    # test_domain_purity checks domain/*.py only; this subpackage is checked here.
    package = Path(__file__).resolve().parents[2] / "domain" / "subscriptions"
    allowed = set(sys.stdlib_module_names) | {"domain", "__future__"}
    for path in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots = [node.module.split(".")[0]]
            else:
                continue
            assert all(root in allowed for root in roots), f"{path.name} imports {roots}"
