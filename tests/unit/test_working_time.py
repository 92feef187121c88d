"""SPEC 2.10: working days, hours and holidays, and how the steps move with them."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.collection.policy import ClassPolicy, LateFee, format_late_fee, parse_late_fee
from domain.collection.schedule import Policy, plan_steps
from domain.collection.timeline import suspension_time, timeline, working_steps
from domain.collection.working_time import (
    Calendar,
    WorkingTime,
    format_working_days,
    format_working_hours,
    parse_holidays_csv,
    parse_working_days,
    parse_working_hours,
)
from domain.money import MoneyError, currency
from domain.when import overdue_instant, parse_duration

SAO_PAULO = "America/Sao_Paulo"
OFFICE = WorkingTime(days=parse_working_days("mon-fri"), start_minute=9 * 60,
                     end_minute=18 * 60)


def local(zone: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def office_policy(zone: str = SAO_PAULO, working: WorkingTime = OFFICE,
                  **schedule: timedelta) -> ClassPolicy:
    return ClassPolicy(schedule=Policy(**schedule), timezone=zone, working=working)


def by_key(policy: ClassPolicy, overdue_at: datetime) -> dict[str, tuple[datetime, datetime]]:
    return {s.key: (s.nominal, s.at) for s in working_steps(policy, overdue_at)}


# --- the worked example ----------------------------------------------------------


def test_worked_example_suspension_moves_to_monday_and_warning_to_friday() -> None:
    policy = ClassPolicy(
        schedule=Policy(grace=parse_duration("8d")), timezone=SAO_PAULO, working=OFFICE,
        late_fee=parse_late_fee("2%", currency("BRL")), late_fee_after=parse_duration("5d"),
        terminate_after=parse_duration("30d"))
    d = overdue_instant(date(2026, 6, 4), SAO_PAULO)  # due Thursday
    assert d == local(SAO_PAULO, 2026, 6, 5)  # D: Friday 00:00, never moved
    entries = {e.key: e for e in timeline(policy, d)}
    suspension = entries["suspension"]
    assert suspension.nominal == local(SAO_PAULO, 2026, 6, 13)  # S: Saturday
    assert suspension.at == local(SAO_PAULO, 2026, 6, 15, 9)  # S': Monday 09:00
    assert suspension.why == ("S Saturday 2026-06-13 00:00 is outside working days mon-fri; "
                              "moved to the next start of working time, Monday 2026-06-15 09:00")
    warning = entries["suspension_warning"]
    assert warning.at == local(SAO_PAULO, 2026, 6, 12, 9)  # Friday 09:00
    assert warning.why == (
        "due 1d before S' at Sunday 2026-06-14 09:00, which is outside working days mon-fri; "
        "moved to the start of the last working period before it, Friday 2026-06-12 09:00")
    assert entries["late_fee"].at == local(SAO_PAULO, 2026, 6, 10)  # D + 5d, not moved
    assert entries["termination"].at == local(SAO_PAULO, 2026, 7, 15, 9)  # S' + 30d
    # The overdue notice (Friday 00:00) waits for Friday 09:00; the reminder likewise.
    assert entries["overdue"].nominal == d
    assert entries["overdue"].at == local(SAO_PAULO, 2026, 6, 5, 9)
    assert entries["due_reminder:3d"].at == local(SAO_PAULO, 2026, 6, 2, 9)
    assert [e.key for e in timeline(policy, d)] == [
        "due_reminder:3d", "overdue", "late_fee", "suspension_warning", "suspension",
        "termination"]
    assert policy.late_fee is not None and policy.late_fee.amount(2000) == 40  # 0.40 on 20.00


def test_default_policy_moves_nothing() -> None:
    d = local("UTC", 2026, 6, 13, 3, 17)
    for step in working_steps(ClassPolicy(), d):
        assert step.at == step.nominal and step.why is None
    assert [s.step() for s in working_steps(ClassPolicy(), d)] == list(plan_steps(d, Policy()))


def test_suspension_in_working_time_stays_and_the_warning_follows_s() -> None:
    d = local(SAO_PAULO, 2026, 6, 9, 10)  # Tuesday 10:00
    steps = by_key(office_policy(), d)
    assert steps["suspension"] == (d, d)
    assert steps["suspension_warning"] == (d - timedelta(days=1), d - timedelta(days=1))
    assert suspension_time(office_policy(), d) == (d, None)


def test_warning_follows_a_moved_suspension_even_inside_working_time() -> None:
    # S Friday 20:00 -> S' Monday 09:00; warning 1d before S' is Sunday -> Friday 09:00.
    # With warning 3d, S' - 3d is Friday 09:00 itself: working time, not moved again.
    d = local(SAO_PAULO, 2026, 6, 12, 20)
    steps = by_key(office_policy(warning=timedelta(days=3)), d)
    assert steps["suspension"][1] == local(SAO_PAULO, 2026, 6, 15, 9)
    assert steps["suspension_warning"] == (local(SAO_PAULO, 2026, 6, 9, 20),
                                           local(SAO_PAULO, 2026, 6, 12, 9))
    why = {s.key: s.why for s in working_steps(office_policy(warning=timedelta(days=3)), d)}
    assert why["suspension_warning"] == ("due 3d before S' (Monday 2026-06-15 09:00), as the "
                                         "suspension moved")


def test_reminder_and_overdue_outside_hours_wait_for_the_next_working_morning() -> None:
    d = local(SAO_PAULO, 2026, 6, 10, 19)  # Wednesday 19:00
    steps = by_key(office_policy(reminders=(timedelta(hours=12),)), d)
    assert steps["overdue"] == (d, local(SAO_PAULO, 2026, 6, 11, 9))
    # Wednesday 07:00 -> 09:00 the same day
    assert steps["due_reminder:12h"] == (local(SAO_PAULO, 2026, 6, 10, 7),
                                         local(SAO_PAULO, 2026, 6, 10, 9))


def test_end_of_working_hours_is_not_working_time() -> None:
    calendar = Calendar(OFFICE, ZoneInfo(SAO_PAULO))
    assert calendar.is_working(local(SAO_PAULO, 2026, 6, 10, 17, 59))
    assert not calendar.is_working(local(SAO_PAULO, 2026, 6, 10, 18))
    assert calendar.is_working(local(SAO_PAULO, 2026, 6, 10, 9))
    assert not calendar.is_working(local(SAO_PAULO, 2026, 6, 10, 8, 59))


def test_a_holiday_run_of_several_days() -> None:
    holidays = frozenset(date(2026, 12, 24) + timedelta(days=n) for n in range(9))  # to Jan 1
    working = WorkingTime(days=OFFICE.days, start_minute=OFFICE.start_minute,
                          end_minute=OFFICE.end_minute, holidays=holidays)
    policy = office_policy(working=working)
    d = local(SAO_PAULO, 2026, 12, 24, 10)  # a holiday (Thursday)
    steps = {s.key: s for s in working_steps(policy, d)}
    # The next working morning after the run and the weekend: Monday 2027-01-04.
    assert steps["suspension"].at == local(SAO_PAULO, 2027, 1, 4, 9)
    assert steps["suspension"].why == (
        "S Thursday 2026-12-24 10:00 is a holiday; moved to the next start of working time, "
        "Monday 2027-01-04 09:00")
    # 1d before S' is Sunday 2027-01-03; the last working period before it began on the
    # Wednesday before the run.
    assert steps["suspension_warning"].at == local(SAO_PAULO, 2026, 12, 23, 9)
    assert steps["overdue"].at == local(SAO_PAULO, 2027, 1, 4, 9)
    assert steps["due_reminder:3d"].at == local(SAO_PAULO, 2026, 12, 21, 10)  # a Monday


# --- DST ---------------------------------------------------------------------------------


def test_dst_spring_forward_monday_morning_is_local_time() -> None:
    # New York: clocks go from 02:00 EST to 03:00 EDT on Sunday 2026-03-08.
    zone = "America/New_York"
    d = local(zone, 2026, 3, 7, 12)  # Saturday noon, EST
    steps = by_key(office_policy(zone), d)
    s_prime = steps["suspension"][1]
    assert s_prime == local(zone, 2026, 3, 9, 9) == datetime(2026, 3, 9, 13, tzinfo=UTC)
    # 1d (24 h) before S' is Sunday 09:00 EDT -> Friday 09:00 EST (14:00 UTC).
    assert steps["suspension_warning"][1] == datetime(2026, 3, 6, 14, tzinfo=UTC)


def test_dst_a_working_start_inside_the_skipped_hour_is_the_jump() -> None:
    zone = "America/New_York"
    working = WorkingTime(start_minute=2 * 60 + 30, end_minute=18 * 60)
    calendar = Calendar(working, ZoneInfo(zone))
    # 02:30 never happens on 2026-03-08: working time starts at the jump, 03:00 EDT.
    assert calendar.next_start(local(zone, 2026, 3, 8, 0, 30)) == datetime(2026, 3, 8, 7,
                                                                            tzinfo=UTC)


def test_dst_fall_back_a_start_in_the_repeated_hour_is_its_first_time() -> None:
    # Lisbon: clocks go from 02:00 WEST back to 01:00 WET on Sunday 2026-10-25.
    zone = "Europe/Lisbon"
    working = WorkingTime(start_minute=60 + 30, end_minute=18 * 60)
    calendar = Calendar(working, ZoneInfo(zone))
    start = calendar.next_start(datetime(2026, 10, 24, 23, tzinfo=UTC))
    assert start == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 01:30 WEST, the first 01:30
    assert calendar.is_working(datetime(2026, 10, 25, 1, 30, tzinfo=UTC))  # the second 01:30


def test_dst_fall_back_suspension_keeps_local_office_hours() -> None:
    zone = "Europe/Lisbon"
    d = local(zone, 2026, 10, 24, 12)  # Saturday noon, WEST (+01:00)
    steps = by_key(office_policy(zone), d)
    assert steps["suspension"][1] == datetime(2026, 10, 26, 9, tzinfo=UTC)  # Monday 09:00 WET
    assert steps["suspension_warning"][1] == datetime(2026, 10, 23, 8, tzinfo=UTC)  # Fri WEST


# --- reading the settings ----------------------------------------------------------------


@pytest.mark.parametrize(("text", "days"), [
    ("mon-fri", {1, 2, 3, 4, 5}),
    ("mon,wed,fri", {1, 3, 5}),
    ("MON-FRI", {1, 2, 3, 4, 5}),
    ("sat-mon", {6, 7, 1}),
    ("mon-fri,sun", {1, 2, 3, 4, 5, 7}),
    ("mon-sun", set(range(1, 8))),
    ("tue", {2}),
])
def test_parse_working_days(text: str, days: set[int]) -> None:
    assert parse_working_days(text) == days
    assert parse_working_days(format_working_days(days)) == days


@pytest.mark.parametrize(("text", "message"), [
    ("", "working days are empty"),
    ("monday-friday", "'monday' is not a day"),
    ("mon-fry", "'fry' is not a day"),
    ("mon;fri", "is not a day"),
])
def test_parse_working_days_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_working_days(text)


def test_parse_working_hours() -> None:
    assert parse_working_hours("09:00-18:00") == (540, 1080)
    assert parse_working_hours(" 9:30 - 17:45 ") == (570, 1065)
    assert parse_working_hours("00:00-24:00") == (0, 1440)
    assert format_working_hours(540, 1080) == "09:00-18:00"


@pytest.mark.parametrize(("text", "message"), [
    ("9-18", "not understood"),
    ("18:00-09:00", "must start before they end"),
    ("09:00-09:00", "must start before they end"),
    ("09:60-18:00", "not on the clock"),
    ("24:00-24:00", "not on the clock"),
    ("09:00-24:30", "not on the clock"),
])
def test_parse_working_hours_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_working_hours(text)


def test_parse_holidays_csv() -> None:
    text = "date,name\n2026-12-25,Christmas\n\n# New year\n2027-01-01\n\"2026-11-02\",Finados\n"
    assert parse_holidays_csv(text) == {date(2026, 12, 25), date(2027, 1, 1),
                                        date(2026, 11, 2)}
    with pytest.raises(ValueError, match="line 3: '25/12/2026' is not a date"):
        parse_holidays_csv("2026-12-24\n2026-12-31\n25/12/2026\n")


def test_working_time_refuses_impossible_calendars() -> None:
    with pytest.raises(ValueError, match="at least one day"):
        WorkingTime(days=frozenset())
    with pytest.raises(ValueError, match="start before they end"):
        WorkingTime(start_minute=600, end_minute=600)
    with pytest.raises(ValueError, match="ISO weekdays"):
        WorkingTime(days=frozenset({0}))


def test_late_fee_forms() -> None:
    usd, jpy = currency("USD"), currency("JPY")
    assert parse_late_fee("5.00", usd) == LateFee(fixed=500)
    assert parse_late_fee("2%", usd) == LateFee(basis_points=200)
    assert parse_late_fee("2.5%", usd) == LateFee(basis_points=250)
    assert format_late_fee(LateFee(basis_points=250), usd) == "2.5%"
    assert format_late_fee(LateFee(fixed=500), usd) == "5.00"
    assert LateFee(basis_points=250).amount(1000) == 25
    assert LateFee(basis_points=200).amount(2025) == 41  # 40.5 rounds half-up
    assert LateFee(basis_points=200).amount(2024) == 40  # 40.48
    assert LateFee(fixed=500).amount(0) == 500
    with pytest.raises(MoneyError):
        parse_late_fee("5.5", jpy)
    for bad in ("0%", "101%", "2.555%", "-2%"):
        with pytest.raises(ValueError):
            parse_late_fee(bad, usd)
    with pytest.raises(MoneyError, match="greater than zero"):
        parse_late_fee("0.00", usd)


def test_timeline_with_now_says_what_runs_and_what_is_skipped() -> None:
    d = local(SAO_PAULO, 2026, 6, 5)
    policy = office_policy(grace=timedelta(days=8))
    late = {e.key: e.decision for e in timeline(policy, d, now=local(SAO_PAULO, 2026, 6, 8))}
    assert late == {"due_reminder:3d": "skipped: its time had passed",
                    "overdue": "runs at once",
                    "suspension_warning": "upcoming", "suspension": "upcoming"}


# --- properties --------------------------------------------------------------------------

ZONES = ["UTC", SAO_PAULO, "America/New_York", "Europe/Lisbon", "Asia/Kolkata",
         "Australia/Lord_Howe"]
BASE = date(2026, 1, 1)

working_times = st.builds(
    lambda days, start, length, holidays: WorkingTime(
        days=days, start_minute=start * 15, end_minute=min(1440, start * 15 + length * 15),
        holidays=frozenset(BASE + timedelta(days=h) for h in holidays)),
    st.frozensets(st.integers(1, 7), min_size=1),
    st.integers(0, 95),
    st.integers(1, 96),
    st.frozensets(st.integers(0, 400), max_size=30),
)
instants = st.integers(0, 365 * 24 * 3600).map(
    lambda s: datetime(2026, 1, 15, tzinfo=UTC) + timedelta(seconds=s))
durations = st.integers(0, 10 * 24 * 3600).map(lambda s: timedelta(seconds=s))


def _period_starts(calendar: Calendar, around: datetime, after: datetime) -> list[datetime]:
    day = calendar.local(around).date() - timedelta(days=2)
    last = calendar.local(after).date() + timedelta(days=2)
    starts = []
    while day <= last:
        period = calendar.period(day)
        if period:
            starts.append(period[0])
        day += timedelta(days=1)
    return starts


@settings(max_examples=300, deadline=None)
@given(working_times, st.sampled_from(ZONES), instants)
def test_next_start_is_the_first_working_instant_not_before(working: WorkingTime, zone: str,
                                                            instant: datetime) -> None:
    calendar = Calendar(working, ZoneInfo(zone))
    moved = calendar.next_start(instant)
    assert moved >= instant
    assert calendar.is_working(moved)
    if moved != instant:
        assert not calendar.is_working(instant)
        assert moved in _period_starts(calendar, instant, moved)
        assert not [p for p in _period_starts(calendar, instant, moved) if instant <= p < moved]


@settings(max_examples=300, deadline=None)
@given(working_times, st.sampled_from(ZONES), instants)
def test_last_start_before_is_earlier_never_later(working: WorkingTime, zone: str,
                                                  instant: datetime) -> None:
    calendar = Calendar(working, ZoneInfo(zone))
    moved = calendar.last_start_before(instant)
    assert moved <= instant
    assert calendar.is_working(moved)
    if moved != instant:
        assert not calendar.is_working(instant)
        assert not [p for p in _period_starts(calendar, moved, instant) if moved < p < instant]


@settings(max_examples=200, deadline=None)
@given(working_times, st.sampled_from([SAO_PAULO, "UTC", "Asia/Kolkata"]), instants)
def test_working_time_is_the_local_day_and_clock(working: WorkingTime, zone: str,
                                                 instant: datetime) -> None:
    """Without DST, an instant is working time exactly when its local day is a working day
    and its local clock is within the working hours."""
    wall = instant.astimezone(ZoneInfo(zone))
    minute = wall.hour * 60 + wall.minute
    expected = (working.is_working_day(wall.date())
                and working.start_minute <= minute < working.end_minute)
    assert Calendar(working, ZoneInfo(zone)).is_working(instant) == expected


@settings(max_examples=200, deadline=None)
@given(working_times, st.sampled_from(ZONES), instants, durations, durations,
       st.lists(durations, max_size=3))
def test_steps_move_only_as_spec_2_10_says(working: WorkingTime, zone: str, d: datetime,
                                           grace: timedelta, warning: timedelta,
                                           reminders: list[timedelta]) -> None:
    policy = ClassPolicy(schedule=Policy(reminders=tuple(reminders), grace=grace,
                                         warning=warning), timezone=zone, working=working)
    calendar = Calendar(working, ZoneInfo(zone))
    steps = {s.key: s for s in working_steps(policy, d)}
    assert steps["overdue"].nominal == d  # D never moves
    s_prime = steps["suspension"].at
    assert s_prime == calendar.next_start(d + grace)
    warning_step = steps["suspension_warning"]
    assert warning_step.at <= s_prime - warning  # earlier, never later
    assert warning_step.at == calendar.last_start_before(s_prime - warning)
    for step in steps.values():
        assert calendar.is_working(step.at)
        assert (step.why is None) == (step.at == step.nominal)
        if step.kind in ("due_reminder", "overdue"):
            assert step.at == calendar.next_start(step.nominal)
    assert list(steps.values()) == sorted(steps.values(), key=lambda s: s.at)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(ZONES), instants, durations, durations)
def test_all_day_every_day_moves_nothing(zone: str, d: datetime, grace: timedelta,
                                         warning: timedelta) -> None:
    policy = ClassPolicy(schedule=Policy(grace=grace, warning=warning), timezone=zone)
    assert [s.step() for s in working_steps(policy, d)] == list(plan_steps(d, policy.schedule))
