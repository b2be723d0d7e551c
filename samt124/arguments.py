"""Values a person types on the command line, checked before anything connects.

Each function is an ``argparse`` ``type=``: it returns the value or raises
``argparse.ArgumentTypeError`` with the problem in a few words (``samt124`` prints it on one
line with the argument's name and exits 2). Codes are checked against the catalogue, and an
unknown one gets the closest known one as a suggestion.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

from samt124.domain import codes
from samt124.domain.provinces import PROVINCES
from samt124.domain.tehran_time import TEHRAN, gregorian, start_of_day

Problem = argparse.ArgumentTypeError


def _number(text: str, kind: Callable[[str], float], what: str) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise Problem(f"expected {what}, got {text!r}") from None
    if not math.isfinite(value):
        raise Problem(f"expected {what}, got {text!r}")
    return value


def count(text: str) -> int:
    """A whole number of things, at least one."""
    value = int(_number(text, int, "a whole number"))
    if value < 1:
        raise Problem(f"must be 1 or more, got {value}")
    return value


def natural(text: str) -> int:
    """A whole number, zero or more (a seed)."""
    value = int(_number(text, int, "a whole number"))
    if value < 0:
        raise Problem(f"must be 0 or more, got {value}")
    return value


def seconds(text: str) -> float:
    """A duration in seconds, more than zero."""
    value = _number(text, float, "a number of seconds")
    if value <= 0:
        raise Problem(f"must be more than zero seconds, got {value:g}")
    return value


def positive(text: str) -> float:
    """A number more than zero (a rate, a mean)."""
    value = _number(text, float, "a number")
    if value <= 0:
        raise Problem(f"must be more than zero, got {value:g}")
    return value


def rate(text: str) -> float:
    """Events per second: zero (as fast as possible) or more."""
    value = _number(text, float, "a number of events per second")
    if value < 0:
        raise Problem(f"must be 0 (as fast as possible) or more, got {value:g}")
    return value


def port(text: str) -> int:
    value = int(_number(text, int, "a port number"))
    if not 1 <= value <= 65535:
        raise Problem(f"a port is 1..65535, got {value}")
    return value


def _shown(text: str) -> str:
    """A path as typed, quoted when it holds characters that would not print as one line."""
    return text if text.isprintable() else repr(text)


def readable_file(text: str) -> Path:
    """A file that exists and can be read."""
    path = Path(text)
    if not path.exists():
        raise Problem(f"no such file: {_shown(text)}")
    if path.is_dir():
        raise Problem(f"{_shown(text)} is a directory, not a file")
    if not os.access(path, os.R_OK):
        raise Problem(f"cannot read {_shown(text)}: permission denied")
    return path


def writable_file(text: str) -> Path:
    """A file that can be written: its directory exists and takes files."""
    path = Path(text)
    if path.is_dir():
        raise Problem(f"{_shown(text)} is a directory, not a file")
    folder = path.parent
    if not folder.is_dir():
        raise Problem(f"cannot write {_shown(text)}: no directory {_shown(str(folder))}")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise Problem(f"cannot write {_shown(text)}: permission denied")
    return path


def province(text: str) -> str:
    """An ISO 3166-2:IR code of a province; a close code or an English name is suggested."""
    if text in PROVINCES:
        return text
    names = {p.name_en: code for code, p in PROVINCES.items()}
    raise Problem(codes.unknown("province", text, PROVINCES, names))


def instant(text: str) -> datetime:
    """ISO 8601 (``2026-11-29T08:00``, ``2026-11-29T04:30Z``); Tehran time when it has no offset."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise Problem(
            f"{text!r} is not an ISO 8601 time, e.g. 2026-11-29T08:00 or 2026-11-29T04:30Z"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=TEHRAN)


def day(text: str, calendar: str) -> datetime:
    """``YYYY-MM-DD`` in the Jalali or Gregorian calendar, as the start of that day in Tehran.

    Raises :class:`argparse.ArgumentTypeError` for a date that is not one (1405-13-40,
    2026-02-30 in the Gregorian calendar)."""
    example = "1404-03-04" if calendar == "jalali" else "2025-05-25"
    parts = text.strip().replace("/", "-").split("-")
    if len(parts) != 3 or not all(part.isdecimal() for part in parts):
        raise Problem(
            f"expected YYYY-MM-DD in the {calendar} calendar, e.g. {example}; got {text!r}"
        )
    year, month, day_ = (int(part) for part in parts)
    text = "-".join(parts)
    if not 1 <= month <= 12:
        raise Problem(f"{text} is not a {calendar} date: there is no month {month}")
    try:
        found = gregorian(year, month, day_) if calendar == "jalali" else date(year, month, day_)
    except (ValueError, OverflowError):
        raise Problem(
            f"{text} is not a {calendar} date: month {month} of {year} has no day {day_}"
        ) from None
    try:
        return start_of_day(found)
    except (ValueError, OverflowError):
        raise Problem(f"{text} is outside the range of dates samt124 can handle") from None


def as_of(text: str) -> datetime:
    """An instant: ISO 8601 (``2026-11-29T08:00``, ``2026-11-29T04:30Z``, a date alone is its
    start), or a Jalali date and time (``1405-09-08 08:00``, ``1405-09-08T08:00``, ``1405-09-08``),
    told apart by the year (Jalali before 1700); Tehran time when it has no offset."""
    cleaned = text.strip()
    head = cleaned[:4]
    if not (head.isdecimal() and int(head) < 1700):
        return instant(cleaned)
    day_part, _, time_part = cleaned.replace("T", " ", 1).partition(" ")
    start = day(day_part, "jalali")
    if not time_part:
        return start
    try:
        clock = datetime.strptime(
            time_part.strip(), "%H:%M:%S" if time_part.count(":") == 2 else "%H:%M"
        )
    except ValueError:
        raise Problem(
            f"{text!r}: expected a Jalali date and time as 1405-09-08 08:00, or ISO 8601"
        ) from None
    local = start.astimezone(TEHRAN)
    return datetime.combine(local.date(), clock.time(), TEHRAN)
