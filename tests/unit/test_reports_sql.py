"""Report SQL builders, labels and quantiles (no ClickHouse: figures are tested in integration)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from consumers.analytics.clocks import Breach, ClockAt, breaches, fold
from consumers.analytics.reports import (
    QUERIES,
    REPORTS,
    ReportParams,
    closures_sql,
    delegation_sql,
    holder_at,
    instant_label,
    month_label,
    nearest_rank,
    parse_since,
    volume_sql,
    week_label,
    week_of,
)
from samt124.arguments import as_of
from samt124.commands.consumers import render
from samt124.domain.calendar import Calendar, always_open, parse_config


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
    # Friday 20 Sept 2024 21:00 UTC is Saturday 00:30, 31 Shahrivar 1403, in Tehran
    t = datetime(2024, 9, 20, 21, 0, tzinfo=UTC)
    assert week_of(t, JALALI) == (1403, 28)
    assert week_of(t - timedelta(hours=1), JALALI) == (1403, 27)  # Friday in Tehran
    assert week_label(1403, 28, JALALI) == "1403-W28 from 1403-06-31"
    assert week_of(t, GREGORIAN) == (2024, 38)  # Saturday: still the ISO week from Monday 16th


def test_every_report_reads_only_the_facts_known_at_its_instant() -> None:
    as_of = datetime(2024, 9, 22, 8, 30, tzinfo=UTC)
    ms = int(as_of.timestamp() * 1000)
    for name, build in QUERIES.items():
        assert f"occurred_ms <= {ms}" in build("db", ReportParams(as_of=as_of)), name
    assert f"occurred_ms <= {ms}" in closures_sql("db", as_of)
    assert f"occurred_ms <= {ms}" in delegation_sql("db", as_of)


HOUR = 3_600_000_000
OPEN = Calendar(parse_config(always_open("unit")))


def row(
    cycle: int,
    target_h: int,
    elapsed_h: int,
    since_h: int | None,
    at_h: int,
    *,
    stopped: bool = False,
    province: str = "IR-23",
) -> tuple[object, ...]:
    """A deadlines row of one resolution clock (times in hours from the epoch)."""
    since = 0 if since_h is None else since_h * 3_600_000
    return (
        "r", "RESOLUTION", cycle, target_h * HOUR, elapsed_h * HOUR,
        int(since_h is not None), since, int(stopped), province, at_h * 3_600_000,
    )  # fmt: skip


def test_a_clock_is_past_its_deadline_once_its_working_time_reaches_the_target() -> None:
    [clock] = fold([row(1, 10, 0, 0, 0)], OPEN)["r"].values()
    assert clock.deadline_us == 10 * HOUR
    assert clock.overdue(9 * HOUR, OPEN) is None
    assert clock.overdue(10 * HOUR, OPEN) == (0, 0)
    assert clock.overdue(13 * HOUR, OPEN) == (3 * HOUR, 3 * HOUR)


def test_a_paused_clock_keeps_its_deadline_and_its_working_overdue() -> None:
    rows = [row(1, 10, 0, 0, 0), row(1, 10, 12, None, 12)]  # paused 2 h after the deadline
    clock = fold(rows, OPEN)["r"]["resolution"]
    assert clock.overdue(20 * HOUR, OPEN) == (2 * HOUR, 10 * HOUR)
    resumed = fold([*rows, row(1, 10, 12, 30, 30)], OPEN)["r"]["resolution"]
    assert resumed.overdue(31 * HOUR, OPEN) == (3 * HOUR, 21 * HOUR)


def test_a_new_cycle_has_a_deadline_of_its_own() -> None:
    rows = [row(1, 10, 0, 0, 0), row(2, 120, 0, 11, 11)]  # a transfer out of the remit at 11 h
    clock = fold(rows, OPEN)["r"]["resolution"]
    assert clock.deadline_us is not None
    # the always-open calendar's days end a microsecond before midnight
    assert abs(clock.deadline_us - 131 * HOUR) < 1_000
    assert clock == ClockAt(2, 120 * HOUR, 0, 11 * HOUR, False, "IR-23", clock.deadline_us)
    assert clock.overdue(100 * HOUR, OPEN) is None


def test_a_paused_clock_below_its_target_is_not_overdue() -> None:
    rows = [row(1, 10, 0, 0, 0), row(1, 10, 4, None, 4)]
    assert fold(rows, OPEN)["r"]["resolution"].overdue(1_000 * HOUR, OPEN) is None


def breach(cycle: int, due_h: int, province: str = "IR-23") -> Breach:
    return Breach("r", "resolution", cycle, province, due_h * HOUR)


def test_a_breach_is_a_cycle_whose_deadline_passed_before_it_stopped() -> None:
    on_time = [row(1, 10, 0, 0, 0), row(1, 10, 8, None, 8, stopped=True)]
    assert breaches(on_time, OPEN, 1_000 * HOUR) == []
    late = [row(1, 10, 0, 0, 0), row(1, 10, 12, None, 12, stopped=True)]
    assert breaches(late, OPEN, 11 * HOUR) == [breach(1, 10)]
    assert breaches(late[:1], OPEN, 10 * HOUR) == [breach(1, 10)]
    assert breaches(late[:1], OPEN, 10 * HOUR - 1) == []  # not yet at that instant


def test_each_cycle_breaches_once_in_the_province_holding_it_at_its_deadline() -> None:
    rows = [
        row(1, 10, 0, 0, 0),
        row(1, 10, 11, 11, 11, province="IR-30"),  # handed over after its deadline
        row(1, 10, 12, None, 12, stopped=True),
        row(2, 5, 0, 20, 20, province="IR-30"),  # reopened
        row(2, 5, 3, 23, 23, province="IR-30"),  # resumed: the same deadline
    ]
    assert breaches(rows, OPEN, 24 * HOUR) == [breach(1, 10)]
    assert breaches(rows, OPEN, 100 * HOUR) == [breach(1, 10), breach(2, 25, "IR-30")]


def test_a_cycle_ended_before_its_target_or_paused_below_it_is_no_breach() -> None:
    rows = [row(1, 10, 0, 0, 0), row(2, 120, 0, 9, 9)]  # out of the remit at 9 h
    assert breaches(rows, OPEN, 100 * HOUR) == []
    paused = [row(1, 10, 0, 0, 0), row(1, 10, 4, None, 4)]
    assert breaches(paused, OPEN, 1_000 * HOUR) == []


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


@pytest.mark.parametrize(
    ("text", "instant"),
    [
        ("2026-11-29T08:00", datetime(2026, 11, 29, 4, 30, tzinfo=UTC)),
        ("2026-11-29T04:30Z", datetime(2026, 11, 29, 4, 30, tzinfo=UTC)),
        ("1405-09-08 08:00", datetime(2026, 11, 29, 4, 30, tzinfo=UTC)),
        ("1405-09-08T08:00:30", datetime(2026, 11, 29, 4, 30, 30, tzinfo=UTC)),
        ("1405-09-08", datetime(2026, 11, 28, 20, 30, tzinfo=UTC)),
    ],
)
def test_as_of_is_iso_8601_or_a_jalali_date_and_time_in_tehran(
    text: str, instant: datetime
) -> None:
    assert as_of(text) == instant
