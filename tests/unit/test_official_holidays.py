"""Official holidays are versioned data: deadlines depend on the file, not on a package release."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from devtools.holidays import generate, render
from samt124.domain.calendar import DEFAULT_CALENDARS, Calendar, load_config
from samt124.domain.data_files import DataFileError
from samt124.domain.official_holidays import DEFAULT_HOLIDAYS, load_holidays, parse_holidays
from samt124.domain.tehran_time import TEHRAN

# Wed 18 Mar 2026 13:00 Tehran time, 16 working hours (offices 08:00-14:00, Saturday to
# Wednesday): 1 h that day, Nowruz 1405 closes Saturday 21 to Tuesday 24 March, 6 h on Wednesday
# 25, 6 h on Saturday 28, and the deadline falls at 11:00 on Sunday 29 March.
START = datetime(2026, 3, 18, 13, 0, tzinfo=TEHRAN)
WORK = 16 * 3600
DUE = datetime(2026, 3, 29, 11, 0, tzinfo=TEHRAN)

# Computes the same deadline in a fresh interpreter in which `import holidays` fails.
WITHOUT_PACKAGE = f"""
import sys
sys.modules["holidays"] = None
from datetime import datetime
from samt124.domain.calendar import Calendar, load_config
from samt124.domain.tehran_time import TEHRAN
start = datetime.fromisoformat({START.isoformat()!r})
due = Calendar(load_config()).add_working_time("IR-30", start, {WORK})
print(due.isoformat())
print("holidays" in sys.modules and sys.modules["holidays"] is not None)
"""


def test_deadlines_come_from_the_data_file_with_the_holidays_package_unimportable() -> None:
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_PACKAGE], capture_output=True, text=True, check=True
    )
    due, imported = result.stdout.split()
    assert datetime.fromisoformat(due) == DUE
    assert imported == "False"
    assert Calendar(load_config()).add_working_time("IR-30", START, WORK) == DUE


def _files(tmp_path: Path, extra_holiday: date | None) -> Path:
    """A calendars file and its holidays file in ``tmp_path``, optionally one holiday more."""
    tmp_path.mkdir()
    holidays = json.loads(DEFAULT_HOLIDAYS.read_text(encoding="utf-8"))
    if extra_holiday is not None:
        holidays["holidays"].append({"date": extra_holiday.isoformat(), "name": "Decreed"})
        holidays["holidays"].sort(key=lambda entry: entry["date"])
        holidays["version"] += "+decree"
    (tmp_path / "holidays.json").write_text(json.dumps(holidays), encoding="utf-8")
    calendars = json.loads(DEFAULT_CALENDARS.read_text(encoding="utf-8"))
    calendars["official_holidays"] = "holidays.json"
    path = tmp_path / "calendars.json"
    path.write_text(json.dumps(calendars), encoding="utf-8")
    return path


def test_a_changed_data_file_changes_the_deadlines_and_the_calendar_version(
    tmp_path: Path,
) -> None:
    load_holidays.cache_clear()
    same = Calendar(load_config(_files(tmp_path / "same", None)))
    assert same.add_working_time("IR-30", START, WORK) == DUE
    assert same.version == Calendar(load_config()).version

    load_holidays.cache_clear()
    changed = Calendar(load_config(_files(tmp_path / "decree", date(2026, 3, 29))))
    assert changed.add_working_time("IR-30", START, WORK) == DUE + timedelta(days=1)
    assert "+decree" in changed.version
    assert changed.version != same.version


def test_the_calendar_version_names_the_holidays_it_counts_with() -> None:
    version = Calendar(load_config()).version
    holidays = load_holidays()
    assert version.startswith("calendars 1404-10 with IR holidays ")
    assert holidays.version in version
    assert f"sha256 {holidays.digest}" in version


def test_the_shipped_file_reaches_years_ahead() -> None:
    holidays = load_holidays()
    assert holidays.first_day <= date(2020, 3, 20)  # the first office hours in calendars.json
    assert holidays.last_day >= datetime.now(UTC).date() + timedelta(days=5 * 365)
    assert date(2026, 3, 21) in holidays.in_year(2026)  # Nowruz 1405


def test_the_generator_writes_a_file_the_calendar_reads() -> None:
    document = json.loads(render(generate("IR", 1403, 1403)))
    holidays = parse_holidays(document, "generated")
    assert (holidays.first_day, holidays.last_day) == (date(2024, 3, 20), date(2025, 3, 20))
    assert holidays.days[date(2024, 3, 20)] == "Nowruz"
    assert document["holidays"][0]["jalali"] == "1403-01-01"


def test_a_wrong_holidays_file_is_refused_with_its_name_the_path_and_the_problem() -> None:
    document = json.loads(render(generate("IR", 1403, 1403)))
    document["holidays"][1]["date"] = "1403/01/02"  # a Jalali date where a Gregorian one goes
    with pytest.raises(DataFileError) as caught:
        parse_holidays(document, "holidays_ir.json")
    assert str(caught.value).startswith("holidays_ir.json: holidays[1].date: ")
    document = json.loads(render(generate("IR", 1403, 1403)))
    document["holidays"].reverse()
    with pytest.raises(DataFileError, match="in date order"):
        parse_holidays(document, "holidays_ir.json")
