"""Working-time arithmetic: worked examples around Iranian holidays, and the rules it must keep."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from samt124.domain.calendar import Calendar, Closure, load_config, parse_config

TEHRAN = ZoneInfo("Asia/Tehran")
HOUR = 3600
US = timedelta(microseconds=1)
CALENDAR = Calendar(load_config())


def tehran(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=TEHRAN)


def add(start: datetime, hours: float, province: str = "IR-30") -> datetime:
    return CALENDAR.add_working_time(province, start, hours * HOUR)


# -- official holidays, as the holidays package gives them --------------------------------------


@pytest.mark.parametrize(
    "day",
    [
        date(2025, 3, 20),  # 30 Esfand 1403
        date(2025, 3, 21),  # Nowruz 1404
        date(2025, 3, 24),
        date(2025, 3, 31),  # Eid al-Fitr
        date(2025, 4, 1),  # 12 Farvardin 1404, Islamic Republic Day
        date(2025, 4, 2),  # 13 Farvardin 1404, Nature's Day
        date(2025, 7, 5),  # Tasua
        date(2025, 7, 6),  # Ashura
        date(2026, 3, 20),  # 29 Esfand 1404
        date(2026, 3, 21),  # Nowruz 1405 and Eid al-Fitr
        date(2026, 3, 24),
        date(2026, 4, 1),  # 12 Farvardin 1405
        date(2026, 4, 2),  # 13 Farvardin 1405
        date(2026, 6, 24),  # Tasua
        date(2026, 6, 25),  # Ashura
    ],
)
def test_official_holidays_are_days_off(day: date) -> None:
    assert CALENDAR.config.holidays is not None
    assert day in CALENDAR.config.holidays.in_year(day.year)
    assert not CALENDAR.is_working_time(
        "IR-30", datetime.combine(day, datetime.min.time(), TEHRAN) + timedelta(hours=10)
    )


# -- worked deadlines --------------------------------------------------------------------------


def test_a_deadline_skips_nowruz_1404() -> None:
    # Tue 25 Esfand 1403, 07:30-14:30: 4.5 h that day, then Wed-Mon are holidays or weekend.
    assert add(tehran(2025, 3, 18, 10, 0), 7) == tehran(2025, 3, 25, 10, 0)


def test_a_deadline_skips_eid_al_fitr_and_12_13_farvardin_1404() -> None:
    # Sun 30 March 2025, 14:00 + 1 h: half an hour on Sunday, Mon-Wed holidays, Thu-Fri weekend.
    assert add(tehran(2025, 3, 30, 14, 0), 1) == tehran(2025, 4, 5, 8, 0)


def test_a_deadline_skips_nowruz_1405() -> None:
    # From 1 Dey 1404 offices open 08:00-14:00; Nowruz 1405 runs Fri 20 to Tue 24 March 2026.
    assert add(tehran(2026, 3, 18, 12, 0), 3) == tehran(2026, 3, 25, 9, 0)


def test_a_deadline_skips_tasua_and_ashura_in_summer_hours() -> None:
    # Summer 1404 hours 06:00-13:00; Tasua and Ashura fall on Sat 5 and Sun 6 July 2025.
    assert add(tehran(2025, 7, 2, 12, 0), 2) == tehran(2025, 7, 7, 7, 0)


def test_office_hours_change_by_decree() -> None:
    assert CALENDAR.is_working_time("IR-30", tehran(2025, 12, 20, 7, 45))  # 07:30-14:30
    assert not CALENDAR.is_working_time("IR-30", tehran(2025, 12, 22, 7, 45))  # 08:00-14:00
    assert (
        CALENDAR.working_seconds_between(
            "IR-30", tehran(2025, 12, 22, 0, 0), tehran(2025, 12, 23, 0, 0)
        )
        == 6 * HOUR
    )


def test_closing_instant_thursday_and_friday_are_not_working_time() -> None:
    assert CALENDAR.is_working_time("IR-30", tehran(2026, 1, 10, 14, 0) - US)
    assert not CALENDAR.is_working_time("IR-30", tehran(2026, 1, 10, 14, 0))
    assert not CALENDAR.is_working_time("IR-30", tehran(2026, 1, 15, 10, 0))  # Thursday
    assert not CALENDAR.is_working_time("IR-30", tehran(2026, 1, 16, 10, 0))  # Friday


def test_a_deadline_may_be_the_closing_instant_and_zero_snaps_to_the_next_opening() -> None:
    assert add(tehran(2026, 1, 10, 13, 0), 1) == tehran(2026, 1, 10, 14, 0)
    assert add(tehran(2026, 1, 10, 14, 0), 0) == tehran(2026, 1, 11, 8, 0)
    assert add(tehran(2026, 1, 10, 9, 0), 0) == tehran(2026, 1, 10, 9, 0)


def test_a_deadline_crosses_the_year() -> None:
    # Wed 31 Dec 2025 13:00: 1 h left; Sat 3 Jan 2026 is the birthday of Imam Ali.
    assert add(tehran(2025, 12, 31, 13, 0), 2) == tehran(2026, 1, 4, 9, 0)


def test_results_keep_the_time_zone_of_the_argument() -> None:
    start = tehran(2026, 1, 10, 9, 0).astimezone(ZoneInfo("UTC"))
    result = CALENDAR.add_working_time("IR-30", start, HOUR)
    assert result.tzinfo == start.tzinfo
    assert result == tehran(2026, 1, 10, 10, 0)


def test_naive_datetimes_and_negative_durations_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        CALENDAR.add_working_time("IR-30", datetime(2026, 1, 10, 9, 0), HOUR)
    with pytest.raises(ValueError, match="negative"):
        CALENDAR.add_working_time("IR-30", tehran(2026, 1, 10, 9, 0), -1)


def test_a_province_can_work_on_thursdays() -> None:
    config = parse_config(
        {
            "version": "test",
            "time_zone": "Asia/Tehran",
            "official_holidays": "IR",
            "schedules": {
                "*": [{"effective_from": "2020-01-01", "week": {"SAT": ["08:00-14:00"]}}],
                "IR-23": [
                    {
                        "effective_from": "2020-01-01",
                        "week": {"SAT": ["08:00-14:00"], "THU": ["08:00-12:00"]},
                    }
                ],
            },
        }
    )
    calendar = Calendar(config)
    thursday = tehran(2026, 1, 15, 10, 0)
    assert calendar.is_working_time("IR-23", thursday)
    assert not calendar.is_working_time("IR-30", thursday)


def test_overlapping_office_hours_are_refused() -> None:
    week = {"SAT": ["08:00-12:00", "11:00-14:00"]}
    raw = {
        "version": "x",
        "time_zone": "Asia/Tehran",
        "schedules": {"*": [{"effective_from": "2020-01-01", "week": week}]},
    }
    with pytest.raises(ValueError, match="overlap"):
        parse_config(raw)


def test_a_closure_moves_deadlines_in_its_province_only() -> None:
    start = tehran(2026, 1, 10, 13, 0)  # Saturday; 1 h left that day
    closed = CALENDAR.with_closure(Closure("IR-30", date(2026, 1, 11), date(2026, 1, 12)))
    assert closed.add_working_time("IR-30", start, 2 * HOUR) == tehran(2026, 1, 13, 9, 0)
    assert closed.add_working_time("IR-23", start, 2 * HOUR) == tehran(2026, 1, 11, 9, 0)
    assert CALENDAR.add_working_time("IR-30", start, 2 * HOUR) == tehran(2026, 1, 11, 9, 0)


def test_a_closure_moves_a_deadline_the_calendar_already_worked_out() -> None:
    start = tehran(2026, 1, 10, 13, 0)
    assert CALENDAR.add_working_time("IR-30", start, 2 * HOUR) == tehran(2026, 1, 11, 9, 0)
    closed = CALENDAR.with_closure(Closure("IR-30", date(2026, 1, 11), date(2026, 1, 12)))
    assert closed.add_working_time("IR-30", start, 2 * HOUR) == tehran(2026, 1, 13, 9, 0)
    assert CALENDAR.add_working_time("IR-30", start, 2 * HOUR) == tehran(2026, 1, 11, 9, 0)


def test_announcing_the_same_closure_twice_changes_nothing() -> None:
    closure = Closure("IR-30", date(2026, 1, 11), date(2026, 1, 11))
    once = CALENDAR.with_closure(closure)
    assert once.with_closure(closure) is once
    assert once.closures == {"IR-30": (closure,)}


# -- properties ----------------------------------------------------------------------------------

instants = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2027, 6, 1), timezones=st.just(TEHRAN)
)
durations = st.integers(min_value=0, max_value=400 * HOUR * 1_000_000).map(lambda us: us / 1e6)
positive = st.integers(min_value=1, max_value=400 * HOUR * 1_000_000).map(lambda us: us / 1e6)
provinces = st.sampled_from(["IR-30", "IR-23"])
closures = st.builds(
    lambda first, length: Closure("IR-30", first, first + timedelta(days=length)),
    st.dates(min_value=date(2024, 1, 1), max_value=date(2027, 6, 1)),
    st.integers(min_value=0, max_value=10),
)
PROPERTY = settings(max_examples=150, deadline=None)


@PROPERTY
@given(provinces, instants, positive)
def test_a_deadline_never_lands_in_non_working_time(province: str, t: datetime, s: float) -> None:
    due = CALENDAR.add_working_time(province, t, s)
    assert CALENDAR.is_working_time(province, due - US)  # the last working microsecond


@PROPERTY
@given(provinces, instants)
def test_adding_nothing_lands_in_working_time(province: str, t: datetime) -> None:
    due = CALENDAR.add_working_time(province, t, 0)
    assert due >= t
    assert CALENDAR.is_working_time(province, due)


@PROPERTY
@given(instants, instants, durations, durations)
def test_adding_working_time_is_monotonic(t1: datetime, t2: datetime, a: float, b: float) -> None:
    (t1, t2), (a, b) = sorted((t1, t2)), sorted((a, b))
    assert CALENDAR.add_working_time("IR-30", t1, a) <= CALENDAR.add_working_time("IR-30", t2, a)
    assert CALENDAR.add_working_time("IR-30", t1, a) <= CALENDAR.add_working_time("IR-30", t1, b)


@PROPERTY
@given(instants, durations, positive)
def test_adding_working_time_is_additive(t: datetime, a: float, b: float) -> None:
    once = CALENDAR.add_working_time("IR-30", t, a + b)
    assert CALENDAR.add_working_time("IR-30", CALENDAR.add_working_time("IR-30", t, a), b) == once


@PROPERTY
@given(provinces, instants, durations)
def test_working_time_between_a_start_and_its_deadline_is_what_was_added(
    province: str, t: datetime, s: float
) -> None:
    due = CALENDAR.add_working_time(province, t, s)
    assert CALENDAR.working_seconds_between(province, t, due) == pytest.approx(s, abs=1e-6)


@PROPERTY
@given(instants, durations, closures)
def test_a_closure_never_makes_a_deadline_earlier(t: datetime, s: float, closure: Closure) -> None:
    closed = CALENDAR.with_closure(closure)
    assert closed.add_working_time("IR-30", t, s) >= CALENDAR.add_working_time("IR-30", t, s)
    assert not closed.is_working_time(
        "IR-30",
        datetime.combine(closure.first_day, datetime.min.time(), TEHRAN) + timedelta(hours=10),
    )
