"""Tehran time and the Jalali calendar: the one place samt124 turns instants into local days.

``TEHRAN`` is the IANA zone ``Asia/Tehran`` read from the ``tzdata`` package (a dependency, so
every machine applies the same history, not whatever its operating system ships): a fixed UTC+03:30
since Iran ended daylight saving after 2022-09-21, and UTC+04:30 in the summers before that.
A fixed +03:30 offset would put a summer evening of 2021 on the wrong day; ClickHouse's
``DateTime('Asia/Tehran')`` columns and ``toYYYYMM`` use the same zone, so Python and SQL agree.

Jalali (Solar Hijri) dates come from ``jdatetime``, with its month names and its week numbers
(weeks start on Saturday, week 1 holds Farvardin 1). Durations are integer microseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from importlib.resources import files
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jdatetime

TEHRAN_ZONE = "Asia/Tehran"


@lru_cache(maxsize=16)
def zone(name: str = TEHRAN_ZONE) -> ZoneInfo:
    """The IANA time zone ``name`` as the ``tzdata`` package has it (not the system's copy)."""
    resource = files("tzdata").joinpath("zoneinfo", *name.split("/"))
    if not name or ".." in name.split("/") or not resource.is_file():
        raise ZoneInfoNotFoundError(f"no time zone {name!r} in the tzdata package")
    with resource.open("rb") as data:
        return ZoneInfo.from_file(data, key=name)


TEHRAN = zone(TEHRAN_ZONE)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
US_PER_SECOND = 1_000_000
US_PER_HOUR = 3_600 * US_PER_SECOND
JALALI_MONTHS: tuple[str, ...] = tuple(jdatetime.date.j_months_en)  # Farvardin ... Esfand
JALALI_WEEKDAYS: tuple[str, ...] = tuple(jdatetime.date.j_weekdays_en)  # Saturday first


def to_us(t: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime."""
    if t.tzinfo is None:
        raise ValueError(f"naive datetime {t.isoformat()}: a time zone is required")
    return (t - EPOCH) // MICROSECOND


def from_us(us: int, tz: Any = UTC) -> datetime:
    """The aware datetime ``us`` microseconds after the Unix epoch, in ``tz``."""
    return (EPOCH + us * MICROSECOND).astimezone(tz)


def tehran(t: datetime) -> datetime:
    """The aware instant ``t`` on Tehran's wall clock."""
    if t.tzinfo is None:
        raise ValueError(f"naive datetime {t.isoformat()}: a time zone is required")
    return t.astimezone(TEHRAN)


def tehran_day(t: datetime) -> date:
    """The Gregorian day it is in Tehran at instant ``t``."""
    return tehran(t).date()


def start_of_day(day: date) -> datetime:
    """The instant the Tehran day ``day`` begins."""
    return datetime.combine(day, time(), TEHRAN)


@dataclass(frozen=True)
class JalaliDay:
    year: int
    month: int
    week: int  # jdatetime's week number: weeks start on Saturday, 1-based
    day: int

    @property
    def month_name(self) -> str:
        return JALALI_MONTHS[self.month - 1]


@lru_cache(maxsize=4096)
def jalali_day(day: date) -> JalaliDay:
    """The Jalali day of a Gregorian calendar day."""
    local = jdatetime.date.fromgregorian(date=day)
    return JalaliDay(local.year, local.month, local.weeknumber(), local.day)


def jalali(t: datetime) -> JalaliDay:
    """The Jalali day it is in Tehran at instant ``t``."""
    return jalali_day(tehran_day(t))


_MS = timedelta(milliseconds=1)
_SPAN_MS = 1_800_000  # half an hour: Tehran's day changes at most once within one


def _jalali_of_ms(ms: int) -> JalaliDay:
    return jalali(EPOCH + ms * _MS)


@lru_cache(maxsize=65_536)
def _jalali_span(span: int) -> tuple[JalaliDay, int, JalaliDay]:
    """The Jalali day at the start of half-hour ``span`` (epoch ms // 1,800,000), the first
    millisecond of the span on the next day (the span's end when there is none), and that day.
    """
    start = span * _SPAN_MS
    end = start + _SPAN_MS - 1
    first, last = _jalali_of_ms(start), _jalali_of_ms(end)
    if first == last:
        return first, end + 1, last
    low, high = start, end  # first day at low, another at high: the change lies in (low, high]
    while high - low > 1:
        middle = (low + high) // 2
        if _jalali_of_ms(middle) == first:
            low = middle
        else:
            high = middle
    return first, high, _jalali_of_ms(high)


def jalali_at_ms(ms: int) -> JalaliDay:
    """:func:`jalali` of the instant ``ms`` epoch milliseconds, from a memo per half hour
    (raising what :func:`jalali` raises near the ends of what it can convert)."""
    try:
        first, change, then = _jalali_span(ms // _SPAN_MS)
    except (ValueError, OverflowError):  # the span reaches past those ends
        return _jalali_of_ms(ms)
    return first if ms < change else then


def gregorian(year: int, month: int, day: int) -> date:
    """The Gregorian day of a Jalali date."""
    converted: date = jdatetime.date(year, month, day).togregorian()
    return converted


def jalali_week_start(year: int, week: int) -> jdatetime.date:
    """The first day of week ``week`` of Jalali ``year`` (weeks start on Saturday)."""
    first = jdatetime.date(year, 1, 1)
    day = max(1, (week - 1) * 7 - first.weekday() + 1)  # jdatetime: Saturday is weekday 0
    return first + timedelta(days=day - 1)


def jalali_text(t: datetime, *, seconds: bool = False) -> str:
    """``1404-08-20 14:35``: the instant on Tehran's wall clock, Jalali date."""
    local = tehran(t)
    day = jalali_day(local.date())
    clock = local.strftime("%H:%M:%S" if seconds else "%H:%M")
    return f"{day.year:04d}-{day.month:02d}-{day.day:02d} {clock}"


def jalali_long(t: datetime) -> str:
    """``20 Aban 1404, 14:35 Tehran time``."""
    local = tehran(t)
    day = jalali_day(local.date())
    return f"{day.day} {day.month_name} {day.year}, {local:%H:%M} Tehran time"
