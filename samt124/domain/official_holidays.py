"""Official holidays as versioned data: the days the calendar closes every office of a country.

The dates live in a JSON file in the repository (``samt124/domain/data/holidays_ir.json``),
generated from the ``holidays`` package by ``samt124 calendar holidays`` (``make holidays``),
reviewed and committed like code. The calendar reads only that file, so upgrading or
downgrading the package moves no deadline; a new file (a corrected lunar date, a new holiday
decreed) moves them on purpose, and :attr:`OfficialHolidays.label` names the file's version
and a digest of its dates, so a calendar says which data it counted with.

A day outside the file's ``first_day`` .. ``last_day`` has no official holiday: extend the
file before the deadlines reach its end.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"
DEFAULT_HOLIDAYS = DATA / "holidays_ir.json"
SHIPPED = {"IR": DEFAULT_HOLIDAYS}  # country codes an older calendars file may name


@dataclass(frozen=True)
class OfficialHolidays:
    country: str
    version: str
    first_day: date
    last_day: date
    days: Mapping[date, str]  # date -> name
    _by_year: dict[int, frozenset[date]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_year: dict[int, set[date]] = {}
        for day in self.days:
            by_year.setdefault(day.year, set()).add(day)
        object.__setattr__(self, "_by_year", {y: frozenset(d) for y, d in by_year.items()})

    def in_year(self, year: int) -> frozenset[date]:
        """The holidays of Gregorian ``year`` (as far as the file reaches)."""
        return self._by_year.get(year, frozenset())

    @property
    def digest(self) -> str:
        """The first 12 hex digits of the SHA-256 of the sorted dates: changes with any date."""
        text = "\n".join(day.isoformat() for day in sorted(self.days))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def label(self) -> str:
        """``IR holidays <version> (<first>..<last>, sha256 <digest>)``."""
        span = f"{self.first_day.isoformat()}..{self.last_day.isoformat()}"
        return f"{self.country} holidays {self.version} ({span}, sha256 {self.digest})"


def parse_holidays(raw: Mapping[str, Any], source: str = "holidays") -> OfficialHolidays:
    """Official holidays from the JSON document (validated, see :mod:`.data_files`)."""
    from samt124.domain.data_files import HolidaysFile, validated

    checked = validated(HolidaysFile, raw, source)
    return OfficialHolidays(
        country=checked.country,
        version=checked.version,
        first_day=checked.first_day,
        last_day=checked.last_day,
        days={entry.day: entry.name for entry in checked.holidays},
    )


@lru_cache(maxsize=8)
def load_holidays(path: Path = DEFAULT_HOLIDAYS) -> OfficialHolidays:
    return parse_holidays(json.loads(path.read_text(encoding="utf-8")), str(path))


def resolve(name: str, beside: Path | None) -> Path:
    """The holidays file a calendars file names: a country code of a shipped file, or a path
    (relative to the calendars file's folder, else to the shipped data folder)."""
    if name in SHIPPED:
        return SHIPPED[name]
    path = Path(name)
    if path.is_absolute():
        return path
    if beside is not None and (beside / path).is_file():
        return beside / path
    return DATA / path
