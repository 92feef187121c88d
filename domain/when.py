"""Time as the product reads it: durations, due dates and WHENs (SPEC 2.5, 4.2).

Durations are exact elapsed time: "3d" is 72 hours even across a DST change. A date
(a due date, an issue date) is read in the class's time zone and means the start of that
day there; every instant returned is an aware UTC datetime.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_DURATION_EXAMPLES = "use e.g. 30s, 15m, 12h, 3d or ISO 8601 PT30S, P3D"
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}  # largest first: format relies on it
# Up to 15 digits: longer numbers are typos, and int() of huge strings is slow. The short
# form is lower-case only, so "3M" can never be mistaken for three months.
_SHORT = re.compile(r"([0-9]{1,15})([dhms])")
_ISO = re.compile(
    r"P(?:(?P<w>[0-9]{1,15})W)?(?:(?P<d>[0-9]{1,15})D)?"
    r"(?:T(?=[0-9])(?:(?P<h>[0-9]{1,15})H)?(?:(?P<m>[0-9]{1,15})M)?(?:(?P<s>[0-9]{1,15})S)?)?",
    re.IGNORECASE,
)
# A Y, or an M before any T, is a calendar unit whose length depends on the date.
_CALENDAR_UNITS = re.compile(r"P[^T]*[YM]", re.IGNORECASE)


def parse_duration(text: str) -> timedelta:
    """Parse "30s", "15m", "12h", "3d" (also "0d") or ISO 8601 "PT30S", "P3D", "P1DT12H"."""
    if not isinstance(text, str):
        raise ValueError(f"duration must be a string, got {text!r}")
    value = text.strip()
    if not value:
        raise ValueError(f"duration is empty; {_DURATION_EXAMPLES}")
    if value.startswith("-"):
        raise ValueError(f"duration '{text}' is negative; durations count forward")
    if "." in value or "," in value:
        raise ValueError(f"duration '{text}' has a fraction; use a smaller unit, e.g. 90m")
    try:
        parsed = _parse_short(value)
        if parsed is None:
            parsed = _parse_iso(text, value)
    except OverflowError:
        raise ValueError(f"duration '{text}' is too long") from None
    if parsed is None:
        raise ValueError(f"duration '{text}' is not understood; {_DURATION_EXAMPLES}")
    return parsed


def _parse_short(value: str) -> timedelta | None:
    match = _SHORT.fullmatch(value)
    if match is None:
        return None
    return timedelta(seconds=int(match[1]) * _UNIT_SECONDS[match[2]])


def _parse_iso(text: str, value: str) -> timedelta | None:
    if value[:1].upper() != "P":
        return None
    if _CALENDAR_UNITS.match(value):
        raise ValueError(
            f"duration '{text}' uses years or months, which have no fixed length; use days"
        )
    match = _ISO.fullmatch(value)
    if match is None or not any(match.groups()):
        return None
    parts = {unit: int(number) for unit, number in match.groupdict().items() if number}
    return timedelta(
        weeks=parts.get("w", 0),
        days=parts.get("d", 0),
        hours=parts.get("h", 0),
        minutes=parts.get("m", 0),
        seconds=parts.get("s", 0),
    )


def format_duration(td: timedelta) -> str:
    """The shortest exact short form: "3d", "12h", "15m", else seconds ("90s"); 0 is "0d"."""
    if td < timedelta(0):
        raise ValueError(f"duration {td} is negative")
    if td.microseconds:
        raise ValueError(f"duration {td} is not a whole number of seconds")
    # days/seconds rather than total_seconds(): a float loses exactness on long durations.
    seconds = td.days * 86400 + td.seconds
    for unit, size in _UNIT_SECONDS.items():
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    raise AssertionError("unreachable: every whole number of seconds is a multiple of 1s")


_DATE_ONLY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATE_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ].+")


def parse_due(text: str) -> date | datetime:
    """A due date "2026-06-30", or an instant "2026-06-30T12:00:00+02:00" (offset required)."""
    if not isinstance(text, str):
        raise ValueError(f"due date must be a string, got {text!r}")
    value = text.strip()
    try:
        if _DATE_ONLY.fullmatch(value):
            return date.fromisoformat(value)
        if _DATE_TIME.fullmatch(value):
            instant = datetime.fromisoformat(value)
        else:
            instant = None
    except ValueError:
        raise ValueError(f"due date '{text}' is not a valid date or time") from None
    if instant is None:
        raise ValueError(
            f"due date '{text}' must be a date like 2026-06-30 or a date and time with a UTC "
            "offset like 2026-06-30T12:00:00+02:00"
        )
    # A wall-clock time without an offset names a different instant in every zone.
    if instant.tzinfo is None:
        raise ValueError(f"due date '{text}' has a time but no UTC offset; add one, e.g. Z")
    return instant


_WHEN_EXAMPLES = "2026-05-01, 2026-05-01T09:30:00+02:00 or 2026-05-01T07:30:00Z"


def parse_when(text: str, tz: str = "UTC", what: str = "time") -> datetime:
    """An instant as the CLI and the API take it (issue time, payment time), in UTC.

    A date means the start (midnight) of that day in zone ``tz``, the class's time zone; a
    date and time must carry its UTC offset. ``what`` names the value in error messages.
    """
    if not isinstance(text, str):
        raise ValueError(f"{what} must be a string like {_WHEN_EXAMPLES}, got {text!r}")
    zone = zone_of(tz)
    value = text.strip()
    try:
        if _DATE_ONLY.fullmatch(value):
            return start_of_day(date.fromisoformat(value), zone)
        instant = datetime.fromisoformat(value) if _DATE_TIME.fullmatch(value) else None
    except ValueError:
        instant = None
    except OverflowError:  # the calendar's first or last day, moved by the zone
        raise _out_of_range(what, text) from None
    if instant is None:
        raise ValueError(f"{what} '{text}' is not a valid date or date and time; "
                         f"use e.g. {_WHEN_EXAMPLES}")
    # A wall-clock time without an offset names a different instant in every zone.
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{what} '{text}' has a time but no UTC offset; "
                         f"use e.g. {_WHEN_EXAMPLES}")
    try:
        return instant.astimezone(UTC)
    except OverflowError:
        raise _out_of_range(what, text) from None


def _out_of_range(what: str, text: str) -> ValueError:
    return ValueError(f"{what} '{text}' is out of range (years 1 to 9999 in UTC)")


def overdue_instant(due: date | datetime, tz: str = "UTC") -> datetime:
    """D, as an aware UTC datetime.

    A date means overdue from the next midnight in zone ``tz``: the start of the day after
    the due date. Where a DST jump skips that midnight (America/Santiago, for instance)
    the day starts at the jump, its first valid instant. A datetime is D as given.

    Zones other than UTC are read from the tz database, which the Temporal workflow sandbox
    does not allow: compute D where the invoice is issued and hand workflows the instant.
    """
    zone = zone_of(tz)
    if isinstance(due, datetime):  # before date: datetime is a subclass of date
        if due.tzinfo is None or due.utcoffset() is None:
            raise ValueError(f"due instant {due.isoformat()} has no UTC offset")
        return due.astimezone(UTC)
    if isinstance(due, date):
        return start_of_day(due + timedelta(days=1), zone)
    raise ValueError(f"due must be a date or a datetime, got {due!r}")


def zone_of(tz: str) -> tzinfo:
    if not isinstance(tz, str):
        raise ValueError(f"time zone must be a name like 'America/New_York', got {tz!r}")
    if tz == "UTC":
        # No tz database lookup for the default: it is file I/O, and inside the Temporal
        # workflow sandbox ZoneInfo objects come back wrapped and datetime refuses them.
        return UTC
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone '{tz}'") from None


def start_of_day(day: date, zone: tzinfo) -> datetime:
    """The first instant (UTC) at which the local date in ``zone`` is ``day`` or later.

    "Or later" because a zone can skip a whole day (Pacific/Apia skipped 2011-12-30).
    """
    return first_instant_at(datetime.combine(day, time(0)), zone)


def first_instant_at(wall: datetime, zone: tzinfo) -> datetime:
    """The first instant (UTC) at which the wall clock in ``zone`` reads ``wall`` or later.

    A wall time that happens twice (clocks set back) is its first occurrence; one that
    never happens (clocks set forward over it) is the jump itself, the first instant after it.
    """
    wall = wall.replace(tzinfo=zone)
    # fold=0 and fold=1 give the two readings of an ambiguous or skipped wall time.
    candidates = sorted({wall.replace(fold=fold).astimezone(UTC) for fold in (0, 1)})
    for candidate in candidates:
        if candidate.astimezone(zone).replace(tzinfo=None) == wall.replace(tzinfo=None):
            return candidate  # the wall time exists; if it happens twice, the first time
    # Skipped. The earlier candidate still reads before ``wall`` and the later one after it;
    # the jump is between them, at a whole second in tz data.
    target = wall.replace(tzinfo=None)
    before, after = candidates
    while after - before > timedelta(seconds=1):
        middle = before + timedelta(seconds=(after - before) // timedelta(seconds=2))
        if middle.astimezone(zone).replace(tzinfo=None) >= target:
            after = middle
        else:
            before = middle
    return after
