"""Report SQL builders and parameters (no ClickHouse: the figures are tested in integration)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from consumers.cli import render
from consumers.reports import REPORTS, ReportParams, heatmap, parse_since, volume


def test_every_report_reads_only_the_deduplicated_views() -> None:
    for name, build in REPORTS.items():
        sql = build("db", ReportParams())
        for raw in ("db.events ", "db.events\n", "db.sla_events ", "db.sla_events\n"):
            assert raw not in sql, f"{name} reads a raw table"


def test_filters_on_provinces_and_since() -> None:
    since = datetime(2024, 9, 22, tzinfo=UTC)
    sql = volume("db", ReportParams(provinces=("IR-30", "IR-07"), since=since))
    assert "province IN ('IR-30', 'IR-07')" in sql
    assert f">= {int(since.timestamp())}" in sql


def test_province_codes_are_quoted() -> None:
    sql = volume("db", ReportParams(provinces=("x' OR 1=1 --",)))
    assert "'x\\' OR 1=1 --'" in sql


def test_heatmap_weeks_follow_the_calendar() -> None:
    assert "jalali_week" in heatmap("db", ReportParams(calendar="jalali"))
    assert "toMonday" in heatmap("db", ReportParams(calendar="gregorian"))


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
