"""The dashboard's figures folded from report tables (pure: no ClickHouse here)."""

from __future__ import annotations

from datetime import UTC, datetime

from consumers.analytics.reports import backlog_columns
from dashboard import figures


def backlog_row(
    province: str, body: str, open_: int, first: int, res: int, op: int
) -> tuple[object, ...]:
    cells: list[object] = [province, body, open_]
    for past in (first, res, op):
        cells += [past, 1.0, 1.0, 1.0, 1.0]
    return tuple(cells)


def test_backlog_sums_bodies_into_provinces_and_provinces_into_the_nation() -> None:
    table = (
        backlog_columns(),
        [
            backlog_row("IR-30", "khaneh-samt:IR-30", 5, 1, 2, 0),
            backlog_row("IR-30", "samt-org:IR-30", 3, 0, 1, 1),
            backlog_row("IR-23", "samt-org:IR-23", 7, 2, 0, 0),
        ],
    )
    found = figures.backlog(table)
    assert found["national"] == {
        "open": 15,
        "past_first_response": 3,
        "past_resolution": 3,
        "past_operational": 1,
    }
    alborz, tehran = found["provinces"]
    assert (alborz["province"], alborz["open"], alborz["name_en"]) == ("IR-30", 8, "Alborz")
    assert (tehran["province"], tehran["open"]) == ("IR-23", 7)


def test_channels_sum_categories() -> None:
    table: figures.Table = (
        ["category", "channel", "requests"],
        [("A", "WEB_PORTAL", 3), ("B", "WEB_PORTAL", 4), ("A", "PHONE", 9)],
    )
    assert figures.channels(table) == [
        {"channel": "PHONE", "requests": 9},
        {"channel": "WEB_PORTAL", "requests": 7},
    ]


def test_breaches_sum_weeks() -> None:
    table: figures.Table = (
        ["province", "week", "breaches"],
        [("IR-01", "w1", 2), ("IR-01", "w2", 3)],
    )
    assert figures.breaches(table)["total"] == 5


def test_the_jalali_week_starts_on_saturday_in_tehran() -> None:
    # Monday 2026-11-30 01:00 UTC is 04:30 in Tehran; the week began Saturday 2026-11-28 00:00
    # Tehran, 2026-11-27 20:30 UTC
    start = figures.week_start(datetime(2026, 11, 30, 1, 0, tzinfo=UTC))
    assert start == datetime(2026, 11, 27, 20, 30, tzinfo=UTC)
    # a Saturday just after midnight Tehran is its own week's start
    saturday = datetime(2026, 11, 27, 20, 31, tzinfo=UTC)
    assert figures.week_start(saturday) == start
    assert figures.today_start(saturday) == start


def test_the_moment_is_shown_in_tehran_with_the_jalali_date() -> None:
    moment = figures.Moment.of(datetime(2026, 11, 30, 10, 32, 31, tzinfo=UTC))
    assert (moment.tehran_time, moment.jalali_date) == ("14:02:31", "1405-09-09")


def test_lag_unavailable_is_said_not_zero() -> None:
    assert figures.lag(None, "Kafka away")["total"] is None
    groups = [figures.LagGroup("g", "OK", 4, 1.25), figures.LagGroup("h", "STALL", 6, 0.0)]
    found = figures.lag(groups, None)
    assert found["total"] == 10
    assert [g["status"] for g in found["groups"]] == ["OK", "STALL"]


def test_a_dead_letter_reason_is_grouped_without_its_detail() -> None:
    from dashboard.reading import reason_kind

    assert reason_kind("invalid RequestSubmitted: province 'IR-99'") == "invalid RequestSubmitted"
    itself = "SlaBreached is published by samt124 itself, not on intake"
    assert reason_kind(itself) == itself
    assert reason_kind("") == "unknown"
