"""Report SQL builders, labels and quantiles (no ClickHouse: figures are tested in integration)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from consumers.analytics.reports import (
    QUERIES,
    REPORTS,
    ReportParams,
    closures_sql,
    delegation_sql,
    heatmap_sql,
    holder_at,
    instant_label,
    month_label,
    nearest_rank,
    parse_since,
    resolution_cycle,
    volume_sql,
    week_label,
)
from samt124.commands.consumers import render


def test_every_report_reads_only_the_deduplicated_views() -> None:
    assert set(QUERIES) == set(REPORTS)
    queries = [(name, build("db", ReportParams())) for name, build in QUERIES.items()]
    queries += [("closures", closures_sql("db")), ("delegation", delegation_sql("db"))]
    for name, sql in queries:
        for raw in ("db.events ", "db.events\n", "db.sla_events ", "db.sla_events\n"):
            assert raw not in sql, f"{name} reads a raw table"


def test_filters_on_provinces_and_since() -> None:
    since = datetime(2024, 9, 22, tzinfo=UTC)
    sql = volume_sql("db", ReportParams(provinces=("IR-30", "IR-07"), since=since))
    assert "province IN ('IR-30', 'IR-07')" in sql
    assert f">= {int(since.timestamp())}" in sql


def test_province_codes_are_quoted() -> None:
    sql = volume_sql("db", ReportParams(provinces=("x' OR 1=1 --",)))
    assert "'x\\' OR 1=1 --'" in sql


def test_heatmap_weeks_follow_the_calendar() -> None:
    assert "jalali_week" in heatmap_sql("db", ReportParams(calendar="jalali"))
    assert "toISOWeek" in heatmap_sql("db", ReportParams(calendar="gregorian"))


def test_the_resolution_cycle_follows_reopenings_and_transfers_across_the_remit() -> None:
    samt, khaneh, ministry = "SAMT_ORGANIZATION", "KHANEH_SAMT", "OTHER_MINISTRY"
    assert resolution_cycle(0, [1], [samt]) == 1
    assert resolution_cycle(2, [1], [samt]) == 3  # each reopening
    assert resolution_cycle(0, [1, 5, 9], [samt, khaneh, samt]) == 1  # within the remit
    assert resolution_cycle(0, [1, 5], [samt, ministry]) == 2  # out of the remit
    assert resolution_cycle(1, [9, 1, 5], [samt, samt, ministry]) == 4  # and back, in time order
    assert resolution_cycle(0, [1, 5], [ministry, ministry]) == 1  # referred out from the start


JALALI = ReportParams(calendar="jalali")
BOTH = ReportParams(calendar="jalali", with_gregorian=True)
GREGORIAN = ReportParams(calendar="gregorian")


@pytest.mark.parametrize(
    ("key", "params", "label"),
    [
        (140306, JALALI, "1403-06 (Shahrivar)"),
        (140403, JALALI, "1404-03 (Khordad)"),
        (140306, BOTH, "1403-06 (Shahrivar) [2024-08-22..2024-09-21]"),
        (140312, BOTH, "1403-12 (Esfand) [2025-02-19..2025-03-20]"),  # 1403 is a leap year
        (202409, GREGORIAN, "2024-09"),
    ],
)
def test_month_labels(key: int, params: ReportParams, label: str) -> None:
    assert month_label(key, params) == label


def test_week_labels() -> None:
    # 1 Farvardin 1403 was a Wednesday: week 1 has 3 days, week 24 starts on Saturday 1403-06-03.
    assert week_label(1403, 1, JALALI) == "1403-W01 from 1403-01-01"
    assert week_label(1403, 2, JALALI) == "1403-W02 from 1403-01-04"
    assert week_label(1403, 24, BOTH) == "1403-W24 from 1403-06-03 [2024-08-24]"
    assert week_label(2024, 36, GREGORIAN) == "2024-W36 from 2024-09-02"


def test_instants_are_labelled_in_tehran_time() -> None:
    t = datetime(2024, 9, 21, 21, 0, tzinfo=UTC)  # 00:30 on 1 Mehr 1403 in Tehran
    assert instant_label(t, JALALI) == "1403-07-01 00:30"
    assert instant_label(t, BOTH) == "1403-07-01 00:30 [2024-09-22 00:30]"
    assert instant_label(t, GREGORIAN) == "2024-09-22 00:30"


def test_nearest_rank() -> None:
    values = list(range(10, 0, -1))
    assert nearest_rank(values, 0.5) == 5
    assert nearest_rank(values, 0.9) == 9
    assert nearest_rank(values, 0.91) == 10
    assert nearest_rank([7], 0.9) == 7
    with pytest.raises(ValueError, match="no values"):
        nearest_rank([], 0.5)


def test_the_answering_province_is_the_holder_at_the_answer() -> None:
    holders = [(100, "IR-30"), (500, "IR-23")]
    assert holder_at(holders, 99, "IR-01") == "IR-01"
    assert holder_at(holders, 100, "IR-01") == "IR-30"
    assert holder_at(holders, 499, "IR-01") == "IR-30"
    assert holder_at(holders, 900, "IR-01") == "IR-23"


def test_since_is_a_tehran_day_in_either_calendar() -> None:
    jalali = parse_since("1403-07-01", "jalali")
    gregorian = parse_since("2024-09-22", "gregorian")
    assert jalali == gregorian
    assert jalali.astimezone(UTC) == datetime(2024, 9, 21, 20, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("csv", "a,b\n1,x"),
        ("json", '[\n {\n  "a": 1,\n  "b": "x"\n }\n]'),
        ("table", "a  b\n-  -\n1  x"),
    ],
)
def test_render(fmt: str, expected: str) -> None:
    assert render(["a", "b"], [(1, "x")], fmt) == expected
