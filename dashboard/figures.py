"""The dashboard's figures from report tables: pure functions, no I/O.

Each figure is folded from the table ``samt124 report`` prints for the same parameters
(:func:`consumers.analytics.reports.run`), so the page and the terminal agree by construction:

* backlog: ``report backlog`` summed by province and nationally; past a deadline counts each
  clock (first response, resolution, operational) in its own figure;
* breaches today and this week: ``report heatmap --since`` the start of the Tehran day and of
  the Jalali week (Saturday), summed: the clocks whose deadline fell from then until now before
  they stopped, computed from the clocks, whether or not a breach fact was published;
* on-time by province: ``report sla``; by body in Alborz: ``report sla --by body --province
  IR-30``;
* volume by channel: ``report volume`` summed by channel.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jdatetime

from samt124.domain.provinces import PROVINCES
from samt124.domain.tehran_time import jalali_day, start_of_day, tehran, tehran_day

Table = tuple[list[str], list[tuple[object, ...]]]
CLOCKS = ("first_response", "resolution", "operational")


def records(table: Table) -> list[dict[str, Any]]:
    """A report table as one mapping per row (what ``report --format json`` prints)."""
    columns, rows = table
    return [dict(zip(columns, row, strict=True)) for row in rows]


def today_start(now: datetime) -> datetime:
    """The start of the Tehran day holding ``now``."""
    return start_of_day(tehran_day(now))


def week_start(now: datetime) -> datetime:
    """The start of the Jalali week (from Saturday, Tehran) holding ``now``."""
    day = tehran_day(now)
    weekday = jdatetime.date.fromgregorian(date=day).weekday()  # Saturday is 0
    return start_of_day(day - timedelta(days=weekday))


@dataclass(frozen=True)
class Moment:
    """When a snapshot was read, as the page shows it."""

    utc: str
    tehran_time: str  # HH:MM:SS
    jalali_date: str  # 1405-09-09
    gregorian_date: str  # 2026-11-30

    @classmethod
    def of(cls, now: datetime) -> Moment:
        local = tehran(now)
        day = jalali_day(local.date())
        return cls(
            utc=now.isoformat(),
            tehran_time=local.strftime("%H:%M:%S"),
            jalali_date=f"{day.year:04d}-{day.month:02d}-{day.day:02d}",
            gregorian_date=local.date().isoformat(),
        )


def province_names(code: str) -> dict[str, str]:
    known = PROVINCES.get(code)
    return {
        "name_fa": known.name_fa if known else code,
        "name_en": known.name_en if known else code,
    }


def backlog(table: Table) -> dict[str, Any]:
    """Open requests and those past each clock's deadline, nationally and by province."""
    keys = ["open", *(f"past_{clock}" for clock in CLOCKS)]
    by_province: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(keys, 0))
    for row in records(table):
        counts = by_province[str(row["province"])]
        counts["open"] += int(row["open_requests"])
        for clock in CLOCKS:
            counts[f"past_{clock}"] += int(row[f"past_{clock}_deadline"])
    national = {key: sum(counts[key] for counts in by_province.values()) for key in keys}
    provinces = [
        {"province": code, **province_names(code), **counts}
        for code, counts in sorted(
            by_province.items(), key=lambda item: (-item[1]["open"], item[0])
        )
    ]
    return {"national": national, "provinces": provinces}


def breaches(table: Table) -> dict[str, Any]:
    """The breaches of a heatmap table (clocks past their deadline), in total and by province."""
    by_province: dict[str, int] = defaultdict(int)
    for row in records(table):
        by_province[str(row["province"])] += int(row["breaches"])
    provinces = [
        {"province": code, **province_names(code), "breaches": count}
        for code, count in sorted(by_province.items(), key=lambda item: (-item[1], item[0]))
    ]
    return {"total": sum(by_province.values()), "provinces": provinces}


ON_TIME = (
    "requests",
    "resolved_requests",
    "resolution_on_time_percent",
    "late_resolution",
    "responded_requests",
    "first_response_on_time_percent",
    "late_first_response",
)


def on_time(table: Table, key: str) -> list[dict[str, Any]]:
    """Each row's on-time figures (both clocks, named apart) from an ``sla`` table."""
    found = []
    for row in records(table):
        name = str(row[key])
        entry: dict[str, Any] = {key: name, **{column: row[column] for column in ON_TIME}}
        if key == "province":
            entry.update(province_names(name))
        found.append(entry)
    return found


def channels(table: Table) -> list[dict[str, Any]]:
    """Requests by channel from a ``volume`` table (by category and channel)."""
    by_channel: dict[str, int] = defaultdict(int)
    for row in records(table):
        by_channel[str(row["channel"])] += int(row["requests"])
    return [
        {"channel": channel, "requests": count}
        for channel, count in sorted(by_channel.items(), key=lambda item: (-item[1], item[0]))
    ]


@dataclass(frozen=True)
class LagGroup:
    group: str
    status: str
    sum_lag: int
    max_lag_seconds: float


def lag(groups: Sequence[LagGroup] | None, error: str | None) -> dict[str, Any]:
    """The pipeline's consumer groups; ``available`` False when Kafka could not be read."""
    if groups is None:
        return {"available": False, "error": error, "total": None, "groups": []}
    return {
        "available": True,
        "error": None,
        "total": sum(group.sum_lag for group in groups),
        "groups": [
            {
                "group": group.group,
                "status": group.status,
                "sum_lag": group.sum_lag,
                "max_lag_seconds": round(group.max_lag_seconds, 1),
            }
            for group in groups
        ],
    }


def dead_letters(source: str, counts: Iterable[tuple[str, int]] | None) -> dict[str, Any]:
    """Dead letters by reason; ``source`` says where they were counted (table, kafka, none)."""
    if counts is None:
        return {"source": "none", "total": None, "reasons": []}
    reasons = sorted(((str(r), int(n)) for r, n in counts), key=lambda item: (-item[1], item[0]))
    return {
        "source": source,
        "total": sum(n for _, n in reasons),
        "reasons": [{"reason": reason, "count": count} for reason, count in reasons],
    }


def snapshot(
    *,
    now: datetime,
    tables: Mapping[str, Table],
    oldest: list[dict[str, Any]],
    lag_figures: dict[str, Any],
    dead: dict[str, Any],
    week_label: str,
    queries: int,
    statements: Sequence[tuple[str, float]],
    clickhouse_seconds: float,
    seconds: float,
) -> dict[str, Any]:
    """Everything the page shows, as one JSON-ready mapping."""
    return {
        "as_of": Moment.of(now).__dict__,
        "backlog": backlog(tables["backlog"]),
        "breaches": {
            "today": breaches(tables["breaches_today"]),
            "week": breaches(tables["breaches_week"]),
            "week_label": week_label,
        },
        "on_time": {
            "provinces": on_time(tables["sla"], "province"),
            "alborz_bodies": on_time(tables["sla_alborz"], "body"),
        },
        "channels": channels(tables["volume"]),
        "oldest_overdue": oldest,
        "lag": lag_figures,
        "dead_letters": dead,
        "refresh": {
            "queries": queries,
            "clickhouse_ms": round(clickhouse_seconds * 1000, 1),
            "statements": [
                {"for": label, "ms": round(seconds * 1000, 1)} for label, seconds in statements
            ],
            "ms": round(seconds * 1000, 1),
        },
    }
