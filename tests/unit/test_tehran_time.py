"""One clock: Tehran time and Jalali days, the same in ClickHouse rows, reports and the calendar."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfoNotFoundError

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.analytics.reports import ReportParams, instant_label
from consumers.sink.rows import EVENT_COLUMNS, SLA_COLUMNS, Position, event_row, sla_row
from samt124.domain.calendar import Calendar, load_config
from samt124.domain.events import Requester, RequestSubmitted, SlaBreached
from samt124.domain.tehran_time import (
    JALALI_MONTHS,
    TEHRAN,
    US_PER_HOUR,
    jalali,
    jalali_at_ms,
    jalali_day,
    jalali_long,
    zone,
)

# 20:00 UTC on 10 July 2021: 00:30 on 11 July (20 Tir 1400) in Tehran, which kept summer time
# (+04:30) until 2022; a fixed +03:30 offset would say 23:30 on 10 July (19 Tir).
SUMMER_2021 = datetime(2021, 7, 10, 20, 0, tzinfo=UTC)
# 20:00 UTC on 22 July 2021: 1 Mordad 1400 in Tehran, still 31 Tir at a fixed +03:30. The rows
# keep the Jalali year, month and week, so this is the instant whose row a wrong offset changes.
MONTH_EDGE_2021 = datetime(2021, 7, 22, 20, 0, tzinfo=UTC)
FIXED = timezone(timedelta(hours=3, minutes=30))
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def submitted(at: datetime) -> RequestSubmitted:
    return RequestSubmitted(
        event_id="7c1e0a52-0b5e-4d0f-9d55-2f7e3c1a9b10",
        request_id="r-2021",
        occurred_at=at,
        recorded_at=at,
        source="call-centre-124",
        channel="PHONE_124",
        requester=Requester(national_id="0012345678", name="n"),
        category="IND-RAW",
        province="IR-30",
        subject="s",
        body="b",
        priority="NORMAL",
    )


def test_a_2021_summer_instant_is_the_same_jalali_day_in_rows_reports_and_the_calendar() -> None:
    assert SUMMER_2021.astimezone(FIXED).date() == date(2021, 7, 10)  # what a fixed offset says
    day = jalali(SUMMER_2021)
    assert (day.year, day.month, day.day, day.month_name) == (1400, 4, 20, "Tir")

    row = dict(
        zip(
            EVENT_COLUMNS,
            event_row(submitted(SUMMER_2021), Position("t", 0, 0), "IR-30", SUMMER_2021, b""),
            strict=True,
        )
    )
    assert (row["jalali_year"], row["jalali_month"], row["jalali_week"]) == (1400, 4, day.week)

    calendar = Calendar(load_config())
    assert calendar.day_of(SUMMER_2021) == date(2021, 7, 11)
    assert jalali_day(calendar.day_of(SUMMER_2021)) == day
    assert instant_label(SUMMER_2021, ReportParams()) == "1400-04-20 00:30"
    assert jalali_long(SUMMER_2021) == "20 Tir 1400, 00:30 Tehran time"


def test_rows_and_the_calendar_put_a_2021_month_edge_in_the_same_jalali_month() -> None:
    edge = jalali_day(Calendar(load_config()).day_of(MONTH_EDGE_2021))
    assert (edge.year, edge.month, edge.day) == (1400, 5, 1)
    assert jalali_day(MONTH_EDGE_2021.astimezone(FIXED).date()).month == 4  # the wrong answer
    row = dict(
        zip(
            EVENT_COLUMNS,
            event_row(submitted(MONTH_EDGE_2021), Position("t", 0, 0), "IR-30", NOW, b""),
            strict=True,
        )
    )
    assert (row["jalali_year"], row["jalali_month"], row["jalali_week"]) == (1400, 5, edge.week)
    breach = SlaBreached(
        event_id="e",
        request_id="r-2021",
        occurred_at=MONTH_EDGE_2021,
        recorded_at=MONTH_EDGE_2021,
        source="samt124-sla",
        clock="RESOLUTION",
        cycle=1,
        due_at=SUMMER_2021,
        body_id="samt-org:IR-30",
        province="IR-30",
        policy_id="p",
        policy_version="v",
    )
    sla = dict(zip(SLA_COLUMNS, sla_row(breach, NOW), strict=True))
    assert (sla["jalali_year"], sla["jalali_month"], sla["jalali_week"]) == (1400, 5, edge.week)


def test_the_calendar_opens_the_offices_by_tehran_summer_time_of_2021() -> None:
    calendar = Calendar(load_config())
    sunday = datetime(2021, 7, 11, 8, 0, tzinfo=TEHRAN)  # 03:30 UTC; 07:00 at a fixed +03:30
    assert sunday.utcoffset() == timedelta(hours=4, minutes=30)
    assert calendar.is_working_time("IR-30", sunday)
    assert not calendar.is_working_time("IR-30", sunday - timedelta(hours=1))


def test_tehran_has_kept_plus_three_thirty_since_daylight_saving_ended_in_2022() -> None:
    assert datetime(2022, 9, 21, 12, tzinfo=TEHRAN).utcoffset() == timedelta(hours=4, minutes=30)
    assert datetime(2022, 9, 22, 12, tzinfo=TEHRAN).utcoffset() == timedelta(hours=3, minutes=30)
    assert datetime(2026, 7, 1, 12, tzinfo=TEHRAN).utcoffset() == timedelta(hours=3, minutes=30)


def test_names_and_units_come_from_one_place() -> None:
    assert JALALI_MONTHS[0] == "Farvardin"
    assert JALALI_MONTHS[-1] == "Esfand"
    assert US_PER_HOUR == 3_600_000_000
    assert str(zone()) == "Asia/Tehran"
    with pytest.raises(ZoneInfoNotFoundError, match="no time zone"):
        zone("Asia/Nowhere")


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _reference(ms: int) -> object:
    return jalali(EPOCH + timedelta(milliseconds=ms))


def _tehran_changes() -> list[int]:
    """Epoch ms of each Tehran midnight and offset change from 1940 to 2030, found hour by hour."""
    changes: list[int] = []
    t = datetime(1940, 1, 1, tzinfo=UTC)
    before = (t.astimezone(TEHRAN).date(), t.astimezone(TEHRAN).utcoffset())
    while t < datetime(2030, 1, 1, tzinfo=UTC):
        later = t + timedelta(hours=1)
        now = (later.astimezone(TEHRAN).date(), later.astimezone(TEHRAN).utcoffset())
        if now != before:
            low, high = t, later  # bisect to the millisecond
            while high - low > timedelta(milliseconds=1):
                middle = low + (high - low) / 2
                middle -= timedelta(microseconds=middle.microsecond % 1000)
                if (
                    middle.astimezone(TEHRAN).date(),
                    middle.astimezone(TEHRAN).utcoffset(),
                ) == before:
                    low = middle
                else:
                    high = middle
            changes.append((high - EPOCH) // timedelta(milliseconds=1))
        before, t = now, later
    return changes


def test_jalali_at_ms_is_jalali_of_the_instant_around_every_tehran_midnight_and_dst_change() -> (
    None
):
    changes = _tehran_changes()
    assert len(changes) > 30_000  # a midnight a day, and the offset changes
    for change in changes:
        for delta in (-3_600_001, -1_800_000, -1_000, -1, 0, 1, 999, 1_800_000, 3_600_000):
            ms = change + delta
            assert jalali_at_ms(ms) == _reference(ms), ms


@given(st.integers(min_value=-(2**41), max_value=2**42))
@settings(max_examples=3_000, deadline=None)
def test_jalali_at_ms_is_jalali_of_the_instant(ms: int) -> None:
    assert jalali_at_ms(ms) == _reference(ms)
