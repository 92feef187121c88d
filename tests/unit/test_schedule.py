"""SPEC 2.5: durations, due dates, D and S, the steps and which of them run."""

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.collection.schedule import (
    Policy,
    Step,
    StepDecision,
    StepKind,
    decide_steps,
    plan_steps,
    suspension_instant,
)
from domain.when import format_duration, overdue_instant, parse_due, parse_duration, parse_when

RUN, SKIP = StepDecision.RUN, StepDecision.SKIP

# --- durations -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("15m", timedelta(minutes=15)),
        ("12h", timedelta(hours=12)),
        ("3d", timedelta(days=3)),
        ("0d", timedelta(0)),
        ("0s", timedelta(0)),
        (" 7d ", timedelta(days=7)),
        ("PT30S", timedelta(seconds=30)),
        ("P3D", timedelta(days=3)),
        ("P1DT12H", timedelta(days=1, hours=12)),
        ("PT1H30M", timedelta(hours=1, minutes=30)),
        ("PT15M", timedelta(minutes=15)),
        ("P0D", timedelta(0)),
        ("P2W", timedelta(weeks=2)),
        ("pt12h", timedelta(hours=12)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-3d", "duration '-3d' is negative"),
        ("-PT1H", "is negative"),
        ("", "duration is empty"),
        ("3", "is not understood; use e.g. 30s, 15m, 12h, 3d or ISO 8601 PT30S, P3D"),
        ("d", "is not understood"),
        ("3w", "is not understood"),
        ("3D", "is not understood"),  # the short form is lower-case: "3M" is not months
        ("3 days", "is not understood"),
        ("1h30m", "is not understood"),
        ("P", "is not understood"),
        ("PT", "is not understood"),
        ("P1DT", "is not understood"),
        ("PT1H2D", "is not understood"),
        ("P1Y", "years or months, which have no fixed length"),
        ("P2M", "years or months, which have no fixed length"),
        ("P1Y2M3D", "years or months"),
        ("1.5h", "has a fraction"),
        ("PT0.5S", "has a fraction"),
        ("9999999999999d", "is too long"),
    ],
)
def test_parse_duration_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(text)


def test_parse_duration_refuses_non_strings() -> None:
    with pytest.raises(ValueError, match="must be a string"):
        parse_duration(3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("td", "text"),
    [
        (timedelta(days=3), "3d"),
        (timedelta(hours=72), "3d"),
        (timedelta(hours=12), "12h"),
        (timedelta(hours=36), "36h"),
        (timedelta(minutes=15), "15m"),
        (timedelta(minutes=90), "90m"),
        (timedelta(seconds=30), "30s"),
        (timedelta(seconds=90), "90s"),
        (timedelta(0), "0d"),
    ],
)
def test_format_duration(td: timedelta, text: str) -> None:
    assert format_duration(td) == text


def test_format_duration_refuses_what_it_cannot_write() -> None:
    with pytest.raises(ValueError, match="negative"):
        format_duration(timedelta(seconds=-1))
    with pytest.raises(ValueError, match="whole number of seconds"):
        format_duration(timedelta(milliseconds=1500))


@given(st.integers(min_value=0, max_value=10**9).map(lambda s: timedelta(seconds=s)))
def test_format_and_parse_are_inverse(td: timedelta) -> None:
    text = format_duration(td)
    assert parse_duration(text) == td
    assert format_duration(parse_duration(text)) == text


# --- due dates -------------------------------------------------------------------------


def test_parse_due() -> None:
    assert parse_due("2026-06-30") == date(2026, 6, 30)
    assert type(parse_due("2026-06-30")) is date
    plus_two = timezone(timedelta(hours=2))
    assert parse_due("2026-06-30T12:00:00+02:00") == datetime(2026, 6, 30, 12, tzinfo=plus_two)
    assert parse_due("2026-06-30T10:00:00Z") == datetime(2026, 6, 30, 10, tzinfo=UTC)
    assert parse_due("2026-06-30 10:00+00:00") == datetime(2026, 6, 30, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-06-30T12:00:00", "has a time but no UTC offset; add one"),
        ("2026-02-30", "is not a valid date or time"),
        ("2026-06-30T25:00:00Z", "is not a valid date or time"),
        ("30/06/2026", "must be a date like 2026-06-30 or a date and time with a UTC offset"),
        ("20260630", "must be a date like 2026-06-30"),
        ("2026-W27-1", "must be a date like 2026-06-30"),
        ("", "must be a date like 2026-06-30"),
        ("tomorrow", "must be a date like 2026-06-30"),
    ],
)
def test_parse_due_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_due(text)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- WHEN: issue and payment times (SPEC 2.5) ------------------------------------------


@pytest.mark.parametrize(
    ("text", "tz", "expected"),
    [
        # No DST in Sao Paulo since 2019: midnight is 03:00 UTC.
        ("2026-05-01", "America/Sao_Paulo", datetime(2026, 5, 1, 3, tzinfo=UTC)),
        # Spring forward at midnight: 2018-11-04 began at 01:00 (-02), 03:00 UTC.
        ("2018-11-04", "America/Sao_Paulo", datetime(2018, 11, 4, 3, tzinfo=UTC)),
        # Fall back at midnight: clocks went from 00:00 (-02) back to 23:00 of the 16th; the
        # 16th lasted 25 hours and the 17th began at 00:00 (-03).
        ("2019-02-17", "America/Sao_Paulo", datetime(2019, 2, 17, 3, tzinfo=UTC)),
        # New York changes at 02:00: that day starts in EST, the next in EDT.
        ("2026-03-08", "America/New_York", datetime(2026, 3, 8, 5, tzinfo=UTC)),
        ("2026-03-09", "America/New_York", datetime(2026, 3, 9, 4, tzinfo=UTC)),
        ("2026-05-01", "UTC", datetime(2026, 5, 1, tzinfo=UTC)),
        # An instant with its offset is that instant, whatever the class's zone.
        ("2026-05-01T07:30:00Z", "America/Sao_Paulo", datetime(2026, 5, 1, 7, 30, tzinfo=UTC)),
        ("2026-05-01T09:30:00+02:00", "Asia/Tokyo", datetime(2026, 5, 1, 7, 30, tzinfo=UTC)),
        (" 2026-05-01 09:30-03:00 ", "UTC", datetime(2026, 5, 1, 12, 30, tzinfo=UTC)),
    ],
)
def test_parse_when(text: str, tz: str, expected: datetime) -> None:
    parsed = parse_when(text, tz, "issue time")
    assert parsed == expected and parsed.tzinfo is UTC


def test_parse_when_a_date_is_the_start_of_that_local_day() -> None:
    start = parse_when("2026-05-01", "America/Sao_Paulo")
    local = start.astimezone(ZoneInfo("America/Sao_Paulo"))
    assert (local.date(), local.hour, local.minute) == (date(2026, 5, 1), 0, 0)


ACCEPTED = "use e.g. 2026-05-01, 2026-05-01T09:30:00+02:00 or 2026-05-01T07:30:00Z"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-05-01T09:30:00", "issue time '2026-05-01T09:30:00' has a time but no UTC offset"),
        ("2026-05-01 09:30", "has a time but no UTC offset"),
        ("2026-02-30", "is not a valid date or date and time"),
        ("2026-05-01T25:00:00Z", "is not a valid date or date and time"),
        ("01/05/2026", "is not a valid date or date and time"),
        ("yesterday", "is not a valid date or date and time"),
        ("", "is not a valid date or date and time"),
    ],
)
def test_parse_when_refuses_with_the_accepted_forms(text: str, message: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_when(text, "America/Sao_Paulo", "issue time")
    assert message in str(refused.value)
    assert ACCEPTED in str(refused.value)
    # Each accepted form shown really is accepted.
    for example in ("2026-05-01", "2026-05-01T09:30:00+02:00", "2026-05-01T07:30:00Z"):
        parse_when(example, "America/Sao_Paulo")


def test_parse_when_refuses_an_unknown_zone() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        parse_when("2026-05-01", "Mars/Olympus")


@pytest.mark.parametrize(
    ("due", "tz", "expected"),
    [
        (date(2026, 6, 30), "UTC", utc(2026, 7, 1)),
        (date(2026, 12, 31), "UTC", utc(2027, 1, 1)),
        # New York, around the spring-forward of 2026-03-08 (02:00 -> 03:00)
        (date(2026, 3, 7), "America/New_York", utc(2026, 3, 8, 5)),  # midnight EST
        (date(2026, 3, 8), "America/New_York", utc(2026, 3, 9, 4)),  # midnight EDT
        # ... and the fall-back of 2026-11-01 (02:00 -> 01:00)
        (date(2026, 10, 31), "America/New_York", utc(2026, 11, 1, 4)),  # midnight EDT
        (date(2026, 11, 1), "America/New_York", utc(2026, 11, 2, 5)),  # midnight EST
        # Santiago springs forward at midnight on 2026-09-06 (00:00 -04 -> 01:00 -03): that
        # midnight does not exist and the day starts at 01:00 -03, 04:00 UTC.
        (date(2026, 9, 5), "America/Santiago", utc(2026, 9, 6, 4)),
        # ... and falls back at midnight on 2026-04-05 (00:00 -03 -> 23:00 -04 on the 4th):
        # the 4th ends for good at 00:00 -04.
        (date(2026, 4, 4), "America/Santiago", utc(2026, 4, 5, 4)),
        # Sao Paulo, when Brazil still had DST: 2018-11-04 started at 01:00 -02.
        (date(2018, 11, 3), "America/Sao_Paulo", utc(2018, 11, 4, 3)),
        # Beirut springs forward at midnight (00:00 +02 -> 01:00 +03).
        (date(2025, 3, 29), "Asia/Beirut", utc(2025, 3, 29, 22)),
        # Havana falls back 01:00 -> 00:00: midnight happens twice; the first one counts.
        (date(2025, 11, 1), "America/Havana", utc(2025, 11, 2, 4)),
        # Samoa skipped 2011-12-30 entirely: the day after the 29th starts on the 31st.
        (date(2011, 12, 29), "Pacific/Apia", utc(2011, 12, 30, 10)),
    ],
)
def test_overdue_instant_of_a_date(due: date, tz: str, expected: datetime) -> None:
    instant = overdue_instant(due, tz)
    assert instant == expected
    assert instant.tzinfo is UTC


def test_overdue_instant_defaults_to_utc() -> None:
    assert overdue_instant(date(2026, 6, 30)) == utc(2026, 7, 1)


def test_overdue_instant_of_a_datetime_is_that_instant() -> None:
    due = parse_due("2026-06-30T12:00:00+02:00")
    assert overdue_instant(due) == utc(2026, 6, 30, 10)
    assert overdue_instant(due, "America/New_York") == utc(2026, 6, 30, 10)
    assert overdue_instant(due).tzinfo is UTC


@pytest.mark.parametrize("tz", ["Mars/Olympus_Mons", "", "America", "../etc/passwd"])
def test_overdue_instant_refuses_unknown_zones(tz: str) -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        overdue_instant(date(2026, 6, 30), tz)


def test_overdue_instant_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="no UTC offset"):
        overdue_instant(datetime(2026, 6, 30, 12))


TRICKY_ZONES = [
    "America/Santiago",
    "America/Sao_Paulo",
    "America/Havana",
    "America/Asuncion",
    "America/New_York",
    "America/Nuuk",
    "Asia/Beirut",
    "Asia/Tehran",
    "Africa/Cairo",
    "Europe/London",
    "Australia/Lord_Howe",  # 30-minute DST
    "Pacific/Apia",
    "Antarctica/Troll",  # two-hour DST
]


@given(
    st.sampled_from(TRICKY_ZONES),
    st.dates(min_value=date(1990, 1, 1), max_value=date(2037, 12, 31)),
)
def test_overdue_instant_is_when_the_due_date_ends_locally(tz: str, due: date) -> None:
    zone = ZoneInfo(tz)
    instant = overdue_instant(due, tz)
    assert instant.astimezone(zone).date() > due
    assert (instant - timedelta(seconds=1)).astimezone(zone).date() <= due


# --- steps -----------------------------------------------------------------------------

D = utc(2026, 7, 1)


def kinds_keys_times(steps: tuple[Step, ...]) -> list[tuple[StepKind, str, datetime]]:
    return [(s.kind, s.key, s.at) for s in steps]


def test_plan_steps_with_the_default_policy() -> None:
    assert kinds_keys_times(plan_steps(D, Policy())) == [
        (StepKind.DUE_REMINDER, "due_reminder:3d", D - timedelta(days=3)),
        (StepKind.SUSPENSION_WARNING, "suspension_warning", D - timedelta(days=1)),
        (StepKind.OVERDUE, "overdue", D),
        (StepKind.SUSPENSION, "suspension", D),  # grace 0d: S = D, after the overdue notice
    ]


def test_plan_steps_with_several_reminders_and_grace() -> None:
    policy = Policy(
        reminders=(timedelta(days=3), timedelta(days=7), timedelta(hours=72), timedelta(hours=12)),
        grace=timedelta(days=5),
        warning=timedelta(days=2),
    )
    assert kinds_keys_times(plan_steps(D, policy)) == [
        (StepKind.DUE_REMINDER, "due_reminder:7d", D - timedelta(days=7)),
        (StepKind.DUE_REMINDER, "due_reminder:3d", D - timedelta(days=3)),  # 72h is 3d
        (StepKind.DUE_REMINDER, "due_reminder:12h", D - timedelta(hours=12)),
        (StepKind.OVERDUE, "overdue", D),
        (StepKind.SUSPENSION_WARNING, "suspension_warning", D + timedelta(days=3)),
        (StepKind.SUSPENSION, "suspension", D + timedelta(days=5)),
    ]


def test_steps_at_the_same_instant_follow_the_story_order() -> None:
    policy = Policy(reminders=(timedelta(0),), grace=timedelta(days=1), warning=timedelta(days=1))
    steps = plan_steps(D, policy)
    assert [s.kind for s in steps] == [
        StepKind.DUE_REMINDER,
        StepKind.OVERDUE,
        StepKind.SUSPENSION_WARNING,
        StepKind.SUSPENSION,
    ]
    assert [s.at for s in steps] == [D, D, D, D + timedelta(days=1)]


def test_step_keys_are_unique() -> None:
    policy = Policy(reminders=(timedelta(days=1), timedelta(days=2), timedelta(hours=24)))
    keys = [s.key for s in plan_steps(D, policy)]
    assert len(keys) == len(set(keys)) == 5


def test_suspension_instant_is_d_plus_grace() -> None:
    assert suspension_instant(D, Policy()) == D
    assert suspension_instant(D, Policy(grace=timedelta(days=2))) == D + timedelta(days=2)


def test_durations_are_elapsed_time_across_dst() -> None:
    # D given in New York time just after the spring-forward: "3d" is still 72 hours.
    new_york_d = datetime(2026, 3, 9, tzinfo=ZoneInfo("America/New_York"))
    reminder = plan_steps(new_york_d, Policy())[0]
    assert reminder.at == new_york_d.astimezone(UTC) - timedelta(hours=72)
    assert reminder.at.tzinfo is UTC


def test_policy_validation() -> None:
    assert Policy(reminders=[timedelta(days=1)]).reminders == (timedelta(days=1),)  # type: ignore[arg-type]
    hash(Policy())
    with pytest.raises(ValueError, match="grace must be a whole, non-negative"):
        Policy(grace=timedelta(days=-1))
    with pytest.raises(ValueError, match="reminder must be a whole, non-negative"):
        Policy(reminders=(timedelta(seconds=-1),))
    with pytest.raises(ValueError, match="warning must be a timedelta"):
        Policy(warning="1d")  # type: ignore[arg-type]


def test_plan_steps_refuses_a_naive_d() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        plan_steps(datetime(2026, 7, 1), Policy())


# --- which steps run -------------------------------------------------------------------

STEPS = plan_steps(D, Policy())  # reminder D-3d, warning D-1d, overdue D, suspension D
REMINDER, WARNING, OVERDUE, SUSPENSION = STEPS


def test_a_reminder_reached_on_time_runs() -> None:
    assert decide_steps(STEPS, REMINDER.at, REMINDER.at) == ((REMINDER, RUN),)
    # The timer fired a few seconds late: still the step it was sleeping towards.
    late = REMINDER.at + timedelta(seconds=3)
    assert decide_steps(STEPS, late, REMINDER.at) == ((REMINDER, RUN),)


def test_steps_not_yet_due_are_not_returned() -> None:
    assert decide_steps(STEPS, REMINDER.at - timedelta(seconds=1), None) == ()
    assert decide_steps(STEPS[2:], D - timedelta(hours=1), WARNING.at) == ()


def test_invoice_entered_after_its_due_date_is_overdue_and_suspends_at_once() -> None:
    now = D + timedelta(hours=5)
    assert decide_steps(STEPS, now, None) == (
        (REMINDER, SKIP),
        (WARNING, SKIP),
        (OVERDUE, RUN),
        (SUSPENSION, RUN),
    )


def test_becoming_collect_after_d_is_the_same() -> None:
    # A do_not_collect invoice turns collect (a reversal) two days after D: the workflow
    # reaches its pending steps without having slept towards them.
    now = D + timedelta(days=2)
    decided = decide_steps(STEPS, now, None)
    assert [d for _, d in decided] == [SKIP, SKIP, RUN, RUN]


def test_becoming_collect_between_reminder_and_d_sends_no_late_reminder() -> None:
    grace = Policy(grace=timedelta(days=5))
    steps = plan_steps(D, grace)  # reminder D-3d, overdue D, warning D+4d, suspension D+5d
    now = D - timedelta(days=1)
    assert decide_steps(steps, now, None) == ((steps[0], SKIP),)


def test_stale_reminder_skipped_when_overdue_is_also_due() -> None:
    # The workflow slept towards the reminder, but the worker was down until after D.
    now = D + timedelta(hours=1)
    assert decide_steps(STEPS, now, REMINDER.at) == (
        (REMINDER, SKIP),  # reached on time, but the overdue notice supersedes it
        (WARNING, SKIP),
        (OVERDUE, RUN),
        (SUSPENSION, RUN),
    )


def test_overdue_reached_on_time_with_grace() -> None:
    steps = plan_steps(D, Policy(grace=timedelta(days=5)))
    pending = steps[1:]  # the reminder already ran
    assert decide_steps(pending, D, D) == ((steps[1], RUN),)


def test_late_suspension_runs_and_a_passed_warning_is_skipped() -> None:
    steps = plan_steps(D, Policy(grace=timedelta(days=5), warning=timedelta(days=1)))
    _, _, warning, suspension = steps
    # Slept towards the warning; the timer fired after the suspension time.
    now = suspension.at + timedelta(minutes=10)
    assert decide_steps([warning, suspension], now, warning.at) == (
        (warning, SKIP),
        (suspension, RUN),
    )


def test_steps_at_the_same_instant_reached_on_time_all_run_in_order() -> None:
    policy = Policy(grace=timedelta(days=1), warning=timedelta(days=1))
    steps = plan_steps(D, policy)  # overdue and warning both at D
    pending = [s for s in steps if s.kind != StepKind.DUE_REMINDER]
    decided = decide_steps(pending, D, D)
    assert [(s.kind, d) for s, d in decided] == [
        (StepKind.OVERDUE, RUN),
        (StepKind.SUSPENSION_WARNING, RUN),
    ]


def test_decide_steps_returns_time_order_whatever_the_input_order() -> None:
    now = D + timedelta(hours=1)
    assert decide_steps(list(reversed(STEPS)), now, None) == decide_steps(STEPS, now, None)


def test_decide_steps_refuses_naive_instants() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        decide_steps(STEPS, datetime(2026, 7, 1), None)
    with pytest.raises(ValueError, match="timezone-aware"):
        decide_steps(STEPS, D, datetime(2026, 7, 1))


@pytest.mark.parametrize("text", ["9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+05:00",
                                  "0001-01-01"])
def test_parse_when_off_the_calendar_is_a_clear_refusal(text: str) -> None:
    """The first and last days of the calendar, moved by an offset or a zone, leave the
    years datetime can hold: a ValueError that says so, never an OverflowError (a 500)."""
    with pytest.raises(ValueError, match="out of range"):
        parse_when(text, "Asia/Tokyo", "received_at")
