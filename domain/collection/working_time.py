"""Working time of a class (SPEC 2.10): working days, working hours and holidays.

All three are read in the class's time zone. Each working day has one working period,
from the start of its working hours to their end; "the next start of working time" and
"the start of the last working period before" an instant are counted in those periods.
An instant inside a period is in working time and never moves.

The moving rules themselves (which step moves forward, which backward) are SPEC 2.10's and
live in ``domain.collection.timeline``; this module only knows the calendar.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from domain.when import first_instant_at, start_of_day

# ISO weekday numbers (Monday 1 ... Sunday 7), as PostgreSQL's isodow counts them.
WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
EVERY_DAY = frozenset(range(1, 8))
MINUTES_PER_DAY = 24 * 60
# A holiday run never lasts this long; past it the calendar is refused rather than searched.
_SEARCH_DAYS = 3 * 366
_DAYS_EXAMPLES = "use e.g. mon-fri, mon,wed,fri or mon-sun"
_HOURS_EXAMPLES = "use e.g. 09:00-18:00 (00:00-24:00 is all day)"


@dataclass(frozen=True)
class WorkingTime:
    """Working days (ISO weekdays), working hours in minutes of the local day and holidays.

    The defaults are SPEC 2.10's: every day, all day, no holidays. Hours end after they
    start on the same day (a night shift across midnight is not a working period here).
    """

    days: frozenset[int] = EVERY_DAY
    start_minute: int = 0
    end_minute: int = MINUTES_PER_DAY
    holidays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "days", frozenset(self.days))
        object.__setattr__(self, "holidays", frozenset(self.holidays))
        if not self.days:
            raise ValueError("working days must name at least one day")
        if not self.days <= EVERY_DAY:
            raise ValueError(f"working days are ISO weekdays 1 to 7, got {sorted(self.days)}")
        if not 0 <= self.start_minute < self.end_minute <= MINUTES_PER_DAY:
            raise ValueError("working hours must start before they end, within one day "
                             f"({_HOURS_EXAMPLES})")
        for holiday in self.holidays:
            if not isinstance(holiday, date) or isinstance(holiday, datetime):
                raise ValueError(f"a holiday is a date, got {holiday!r}")

    @property
    def always(self) -> bool:
        """True when no instant is outside working time (nothing ever moves)."""
        return (self.days == EVERY_DAY and self.start_minute == 0
                and self.end_minute == MINUTES_PER_DAY and not self.holidays)

    def is_working_day(self, day: date) -> bool:
        return day.isoweekday() in self.days and day not in self.holidays


# --- the calendar in a zone ------------------------------------------------------------


class Calendar:
    """A class's working time in its zone: which instants are working time, and where the
    next or previous working period starts. Every instant taken and returned is aware."""

    def __init__(self, working: WorkingTime, zone: tzinfo) -> None:
        self.working = working
        self.zone = zone

    def period(self, day: date) -> tuple[datetime, datetime] | None:
        """The working period of a local day, [start, end) in UTC; None on a day off."""
        if not self.working.is_working_day(day):
            return None
        return (self._at(day, self.working.start_minute), self._at(day, self.working.end_minute))

    def is_working(self, instant: datetime) -> bool:
        day = self.local(instant).date()
        for candidate in (day - timedelta(days=1), day):
            period = self.period(candidate)
            if period is not None and period[0] <= instant < period[1]:
                return True
        return False

    def next_start(self, instant: datetime) -> datetime:
        """``instant`` itself when it is working time, else the next start of working time."""
        if self.is_working(instant):
            return instant
        day = self.local(instant).date() - timedelta(days=1)
        for _ in range(_SEARCH_DAYS):
            period = self.period(day)
            if period is not None and period[0] >= instant:
                return period[0]
            day += timedelta(days=1)
        raise ValueError(f"no working time within {_SEARCH_DAYS} days after {instant.isoformat()}")

    def last_start_before(self, instant: datetime) -> datetime:
        """``instant`` itself when it is working time, else the start of the last working
        period that began before it (so, earlier)."""
        if self.is_working(instant):
            return instant
        day = self.local(instant).date() + timedelta(days=1)
        for _ in range(_SEARCH_DAYS):
            period = self.period(day)
            if period is not None and period[0] < instant:
                return period[0]
            day -= timedelta(days=1)
        raise ValueError(f"no working time within {_SEARCH_DAYS} days before "
                         f"{instant.isoformat()}")

    def why_outside(self, instant: datetime) -> str:
        """"Saturday 2026-06-13 00:00 is outside working days mon-fri" (or a holiday, or
        outside working hours), in the words of the class's settings."""
        return f"{self.describe(instant)} {self.outside_because(instant)}"

    def outside_because(self, instant: datetime) -> str:
        day = self.local(instant).date()
        if day in self.working.holidays:
            return "is a holiday"
        if day.isoweekday() not in self.working.days:
            return f"is outside working days {format_working_days(self.working.days)}"
        return ("is outside working hours "
                f"{format_working_hours(self.working.start_minute, self.working.end_minute)}")

    def describe(self, instant: datetime) -> str:
        """"Saturday 2026-06-13 00:00" in the class's zone."""
        local = self.local(instant)
        return f"{_DAY_NAMES[local.weekday()]} {local:%Y-%m-%d %H:%M}"

    def local(self, instant: datetime) -> datetime:
        if instant.tzinfo is None or instant.utcoffset() is None:
            raise ValueError(f"instant must be timezone-aware, got {instant!r}")
        return instant.astimezone(self.zone)

    def _at(self, day: date, minute: int) -> datetime:
        if minute == MINUTES_PER_DAY:
            return start_of_day(day + timedelta(days=1), self.zone)
        wall = datetime.combine(day, time(minute // 60, minute % 60))
        return first_instant_at(wall, self.zone).astimezone(UTC)


# --- reading and writing the settings --------------------------------------------------

_HOURS = re.compile(r"([0-9]{1,2}):([0-9]{2})\s*-\s*([0-9]{1,2}):([0-9]{2})")


def parse_working_days(text: str) -> frozenset[int]:
    """"mon-fri", "mon,wed,fri", "sat-mon" (wraps over the week end), "mon-fri,sun"."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"working days are empty; {_DAYS_EXAMPLES}")
    days: set[int] = set()
    for part in text.lower().split(","):
        names = [name.strip() for name in part.split("-")]
        if len(names) > 2:
            raise ValueError(f"working days '{text}': '{part.strip()}' is not a day or a "
                             f"range; {_DAYS_EXAMPLES}")
        for name in names:
            if name not in WEEKDAY_NAMES:
                raise ValueError(f"working days '{text}': '{name}' is not a day; "
                                 f"{_DAYS_EXAMPLES}")
        first, last = (WEEKDAY_NAMES.index(n) for n in (names[0], names[-1]))
        span = (last - first) % 7
        days.update((first + offset) % 7 + 1 for offset in range(span + 1))
    return frozenset(days)


def format_working_days(days: Iterable[int]) -> str:
    """The shortest "mon-fri,sun" form; "mon-sun" for every day."""
    chosen = sorted(set(days))
    if set(chosen) == EVERY_DAY:
        return "mon-sun"
    runs: list[list[int]] = []
    for day in chosen:
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    parts = []
    for run in runs:
        first, last = WEEKDAY_NAMES[run[0] - 1], WEEKDAY_NAMES[run[-1] - 1]
        parts.append(first if len(run) == 1 else f"{first}-{last}")
    return ",".join(parts)


def parse_working_hours(text: str) -> tuple[int, int]:
    """"09:00-18:00" as minutes of the day (540, 1080); "00:00-24:00" is all day."""
    match = _HOURS.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"working hours '{text}' are not understood; {_HOURS_EXAMPLES}")
    start_h, start_m, end_h, end_m = (int(g) for g in match.groups())
    if start_m > 59 or end_m > 59 or start_h > 23 or end_h > 24 or (end_h == 24 and end_m):
        raise ValueError(f"working hours '{text}' name a time that is not on the clock")
    start, end = start_h * 60 + start_m, end_h * 60 + end_m
    if start >= end:
        raise ValueError(f"working hours '{text}' must start before they end on the same "
                         f"day; {_HOURS_EXAMPLES}")
    return start, end


def format_working_hours(start_minute: int, end_minute: int) -> str:
    return (f"{start_minute // 60:02d}:{start_minute % 60:02d}-"
            f"{end_minute // 60:02d}:{end_minute % 60:02d}")


def parse_holiday(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except (ValueError, AttributeError):
        raise ValueError(f"holiday '{text}' is not a date like 2026-12-25") from None


def parse_holidays_csv(text: str) -> frozenset[date]:
    """A CSV of holidays: the first column of each row is a date (2026-12-25); other
    columns (a name) are ignored, as are blank lines, lines starting with "#" and a header
    row whose first column is not a date. Any other row is refused with its line number."""
    days: set[date] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        first = line.split(",", 1)[0].strip().strip('"')
        if not first or first.startswith("#"):
            continue
        try:
            days.add(date.fromisoformat(first))
        except ValueError:
            if number == 1 and not days and not re.match(r"[0-9]", first):
                continue  # a header such as "date,name"
            raise ValueError(f"holidays file line {number}: '{first}' is not a date like "
                             "2026-12-25") from None
    return frozenset(days)
