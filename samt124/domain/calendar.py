"""The business calendar: when the offices of a province are open.

Working time is the union of a province's office-hour intervals on its working days, minus
official holidays (a versioned data file, :mod:`samt124.domain.official_holidays`) and announced
closures (whole days, per province). Office hours change by decree, so each province has a
list of schedule versions chosen by date (``samt124/domain/data/calendars.json``); a province
without its own list uses ``"*"``.

Arithmetic is done on integer microseconds since the Unix epoch, so additions are exact. For each
(province, year) the calendar builds, once, the sorted working intervals of that year and the
working time accumulated before each of them; a deadline is then a binary search, not a walk.

Conventions:

* intervals are half-open: the instant the office closes (14:00) is not working time;
* ``add_working_time(p, t, s)`` with ``s > 0`` returns the instant the ``s``-th working second
  ends, which may be the closing instant itself (a deadline "by 14:00"); with ``s == 0`` it returns
  ``t`` when ``t`` is working time and otherwise the next opening instant;
* datetimes must be timezone-aware; results are given in the time zone of the argument.
"""

from __future__ import annotations

import json
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from samt124.domain.data_files import CalendarsFile, office_hours, validated
from samt124.domain.official_holidays import OfficialHolidays, load_holidays, resolve
from samt124.domain.tehran_time import US_PER_SECOND, from_us, to_us, zone

DEFAULT_CALENDARS = Path(__file__).parent / "data" / "calendars.json"
ANY_PROVINCE = "*"
WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")  # index = date.weekday()
_SEARCH_YEARS = 10  # a province with no working time for this long is a configuration error
_FIRST_YEAR, _LAST_YEAR = 1990, 2100  # local years located by table; others by conversion
_MEMO_SIZE = 1 << 16  # deadlines remembered per calendar (forgotten all at once when full)

Hours = tuple[tuple[time, time], ...]


@dataclass(frozen=True)
class Schedule:
    """Office hours from ``effective_from`` until the next version: hours per weekday."""

    effective_from: date
    week: tuple[Hours, ...]  # seven entries, Monday first; () for a day off


@dataclass(frozen=True)
class CalendarConfig:
    version: str
    time_zone: str
    holidays: OfficialHolidays | None
    schedules: Mapping[str, tuple[Schedule, ...]]  # province (or "*") -> versions by date

    @property
    def label(self) -> str:
        """The calendar's version and the official holidays it counts with."""
        holidays = self.holidays.label if self.holidays else "no official holidays"
        return f"calendars {self.version} with {holidays}"

    def schedule(self, province: str, day: date) -> Schedule:
        """The office hours in force on ``day``; the first version also covers the days before
        it (a back-filled letter older than the first decree still has working time)."""
        versions = self.schedules.get(province) or self.schedules[ANY_PROVINCE]
        index = bisect_right([v.effective_from for v in versions], day) - 1
        return versions[max(index, 0)]


@dataclass(frozen=True)
class Closure:
    """A province's offices closed for whole days, ``first_day`` to ``last_day`` inclusive."""

    province: str
    first_day: date
    last_day: date

    def __post_init__(self) -> None:
        if self.last_day < self.first_day:
            raise ValueError(f"closure ends before it starts: {self}")

    def years(self) -> range:
        return range(self.first_day.year, self.last_day.year + 1)


@dataclass(frozen=True, slots=True)
class _Year:
    """The working intervals of one province in one local year, with running totals."""

    starts: list[int]
    ends: list[int]
    done_before: list[int]  # working time before interval i
    done_after: list[int]  # working time up to the end of interval i
    total: int

    def done_at(self, t: int) -> int:
        """Working time of this year before instant ``t``."""
        i = bisect_right(self.starts, t) - 1
        if i < 0:
            return 0
        return self.done_before[i] + min(t, self.ends[i]) - self.starts[i]


def _parse_schedule(raw: Mapping[str, Any]) -> Schedule:
    week: Mapping[str, list[str]] = raw["week"]
    unknown = set(week) - set(WEEKDAYS)
    if unknown:
        raise ValueError(f"unknown weekdays {sorted(unknown)}")
    return Schedule(
        effective_from=date.fromisoformat(raw["effective_from"]),
        week=tuple(office_hours(week.get(name, ())) for name in WEEKDAYS),
    )


def parse_config(
    raw: Mapping[str, Any], source: str = "calendars", beside: Path | None = None
) -> CalendarConfig:
    """A :class:`CalendarConfig` from the JSON document of ``calendars.json``.

    ``official_holidays`` names a holidays file, found beside the calendars file (``beside``)
    or among the shipped data; a country code (``"IR"``) names the shipped file of that country.
    """
    validated(CalendarsFile, raw, source)
    schedules = {
        province: tuple(
            sorted((_parse_schedule(s) for s in versions), key=lambda s: s.effective_from)
        )
        for province, versions in raw["schedules"].items()
    }
    named = raw.get("official_holidays")
    return CalendarConfig(
        version=raw["version"],
        time_zone=raw["time_zone"],
        holidays=load_holidays(resolve(named, beside)) if named else None,
        schedules=schedules,
    )


def always_open(version: str) -> dict[str, Any]:
    """A calendar file's content: offices open around the clock every day, with no holidays.

    For tests and benchmarks whose deadlines must pass in seconds of wall-clock time.
    """
    return {
        "version": version,
        "time_zone": "Asia/Tehran",
        "official_holidays": None,
        "schedules": {
            "*": [
                {
                    "effective_from": "2000-01-01",
                    "week": {day: ["00:00-23:59:59.999999"] for day in WEEKDAYS},
                }
            ]
        },
    }


def load_config(path: Path = DEFAULT_CALENDARS) -> CalendarConfig:
    raw = json.loads(path.read_text(encoding="utf-8"))
    return parse_config(raw, str(path), path.parent)


@lru_cache(maxsize=8)
def _new_years(time_zone: str) -> tuple[int, ...]:
    """The instant each local year begins, from ``_FIRST_YEAR`` to ``_LAST_YEAR + 1``."""
    local = zone(time_zone)
    return tuple(
        to_us(datetime(year, 1, 1, tzinfo=local)) for year in range(_FIRST_YEAR, _LAST_YEAR + 2)
    )


class Calendar:
    """Working time per province. Immutable: :meth:`with_closure` returns a new calendar."""

    __slots__ = ("_closures", "_config", "_new_years", "_reached", "_years", "_zone")

    def __init__(
        self,
        config: CalendarConfig,
        closures: Mapping[str, tuple[Closure, ...]] | None = None,
    ) -> None:
        self._config = config
        self._zone = zone(config.time_zone)
        self._closures: Mapping[str, tuple[Closure, ...]] = dict(closures or {})
        self._years: dict[tuple[str, int], _Year] = {}  # memo, filled on demand
        self._new_years = _new_years(config.time_zone)
        # memo of add_working_us: a request's deadlines are asked for again with each of its
        # events (the deadlines fact, the SLA facts, the next due instant), mostly unchanged
        self._reached: dict[tuple[str, int, int], int] = {}

    @property
    def config(self) -> CalendarConfig:
        return self._config

    @property
    def version(self) -> str:
        """The data this calendar counts with (see :attr:`CalendarConfig.label`)."""
        return self._config.label

    @property
    def closures(self) -> Mapping[str, tuple[Closure, ...]]:
        return self._closures

    def with_closure(self, closure: Closure) -> Calendar:
        """This calendar with one more closure (an announcement seen twice changes nothing)."""
        known = self._closures.get(closure.province, ())
        if closure in known:
            return self
        closures = dict(self._closures)
        closures[closure.province] = (*known, closure)
        calendar = Calendar(self._config, closures)
        touched = {(closure.province, year) for year in closure.years()}
        calendar._years = {k: v for k, v in self._years.items() if k not in touched}
        return calendar

    # -- the datetime API ------------------------------------------------------------------

    def add_working_time(self, province: str, start: datetime, seconds: float) -> datetime:
        """The instant ``seconds`` of working time after ``start`` (see the module conventions)."""
        us = self.add_working_us(province, to_us(start), round(seconds * US_PER_SECOND))
        return from_us(us, start.tzinfo)

    def working_seconds_between(self, province: str, start: datetime, end: datetime) -> float:
        """Working time in ``[start, end)`` in seconds; negative when ``end`` precedes ``start``."""
        return self.working_us_between(province, to_us(start), to_us(end)) / US_PER_SECOND

    def day_of(self, t: datetime) -> date:
        """The calendar day it is at instant ``t`` in this calendar's time zone."""
        return t.astimezone(self._zone).date()

    def is_working_time(self, province: str, t: datetime) -> bool:
        us = to_us(t)
        year = self._year(province, self._local_year(us))
        i = bisect_right(year.starts, us) - 1
        return i >= 0 and us < year.ends[i]

    # -- the same in microseconds, for the SLA clocks ------------------------------------------

    def add_working_us(self, province: str, start: int, amount: int) -> int:
        key = (province, start, amount)
        found = self._reached.get(key)
        if found is None:
            if len(self._reached) >= _MEMO_SIZE:
                self._reached.clear()
            found = self._reached[key] = self._add_working_us(province, start, amount)
        return found

    def _add_working_us(self, province: str, start: int, amount: int) -> int:
        if amount < 0:
            raise ValueError(f"cannot add negative working time ({amount} us)")
        year_number = self._local_year(start)
        t: int | None = start  # None: from the beginning of the year
        for _ in range(_SEARCH_YEARS + 1):
            year = self._year(province, year_number)
            if amount == 0:
                i = bisect_right(year.ends, t) if t is not None else 0
                if i < len(year.starts):
                    return year.starts[i] if t is None else max(year.starts[i], t)
            else:
                target = amount + (year.done_at(t) if t is not None else 0)
                if target <= year.total:
                    i = bisect_left(year.done_after, target)
                    return year.starts[i] + target - year.done_before[i]
                amount = target - year.total
            year_number, t = year_number + 1, None
        raise ValueError(f"{province} has no working time for {_SEARCH_YEARS} years")

    def working_us_between(self, province: str, start: int, end: int) -> int:
        if end < start:
            return -self.working_us_between(province, end, start)
        first, last = self._local_year(start), self._local_year(end)
        if first == last:
            year = self._year(province, first)
            return year.done_at(end) - year.done_at(start)
        head = self._year(province, first)
        middle = sum(self._year(province, y).total for y in range(first + 1, last))
        return head.total - head.done_at(start) + middle + self._year(province, last).done_at(end)

    # -- building the years ------------------------------------------------------------------

    def _local_year(self, us: int) -> int:
        index = bisect_right(self._new_years, us) - 1
        if 0 <= index < len(self._new_years) - 1:
            return _FIRST_YEAR + index
        return from_us(us, self._zone).year

    def _year(self, province: str, number: int) -> _Year:
        key = (province, number)
        year = self._years.get(key)
        if year is None:
            year = self._years[key] = self._build_year(province, number)
        return year

    def _build_year(self, province: str, number: int) -> _Year:
        closed: set[date] = set()
        if self._config.holidays:
            closed |= self._config.holidays.in_year(number)
        for closure in self._closures.get(province, ()):
            day = closure.first_day
            while day <= closure.last_day:
                closed.add(day)
                day += timedelta(days=1)
        starts: list[int] = []
        ends: list[int] = []
        day = date(number, 1, 1)
        while day.year == number:
            if day not in closed:
                for opening, closing in self._config.schedule(province, day).week[day.weekday()]:
                    starts.append(to_us(datetime.combine(day, opening, self._zone)))
                    ends.append(to_us(datetime.combine(day, closing, self._zone)))
            day += timedelta(days=1)
        done_before, done_after, total = [], [], 0
        for s, e in zip(starts, ends, strict=True):
            done_before.append(total)
            total += e - s
            done_after.append(total)
        return _Year(starts, ends, done_before, done_after, total)
