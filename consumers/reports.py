"""The reports analysts read, as SQL over the deduplicated views (pure builders) and a runner.

Every report reads ``events_unique``, ``sla_events_unique`` or the ``requests`` view built on
them, so each event counts once however often the sink delivered it. The SQL is portable
between ClickHouse 18.16 and current ClickHouse (no positional GROUP BY, explicit ``ANY``
joins) and returns only strings and numbers, so both engines print the same figures.

Durations are wall-clock hours. Working-time durations need the shared business calendar
(``samt124/calendar.py``), which is not there yet; see :data:`DURATION_NOTE`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Literal

import jdatetime

from consumers.clickhouse.engine import Engine, quote

CalendarKind = Literal["jalali", "gregorian"]
TEHRAN = timezone(timedelta(hours=3, minutes=30))
INTAKE = "('RequestSubmitted', 'LetterRegistered')"
DURATION_NOTE = "durations are wall-clock hours (working-time calendar not yet shared)"
DIMENSIONS = {
    "province": "province",
    "body": "body_id",
    "category": "category",
    "month": "month",
}


@dataclass(frozen=True)
class ReportParams:
    calendar: CalendarKind = "jalali"
    provinces: tuple[str, ...] = ()
    since: datetime | None = None  # requests submitted (facts occurred) from this instant on
    as_of: datetime = field(default_factory=lambda: datetime.now(UTC))
    by: str = "province"  # durations: province, body, category or month


def parse_since(text: str, calendar: CalendarKind) -> datetime:
    """``YYYY-MM-DD`` (Jalali when the calendar is Jalali) as the start of that day in Tehran."""
    year, month, day = (int(part) for part in text.replace("/", "-").split("-"))
    if calendar == "jalali":
        gregorian = jdatetime.date(year, month, day).togregorian()
    else:
        gregorian = date(year, month, day)
    return datetime.combine(gregorian, time(), TEHRAN)


def _unix(t: datetime) -> int:
    return int(t.timestamp())


def _filters(params: ReportParams, time_column: str, province_column: str = "province") -> str:
    """A WHERE clause for the province and since filters (always a valid clause)."""
    clauses = ["1 = 1"]
    if params.provinces:
        codes = ", ".join(quote(code) for code in params.provinces)
        clauses.append(f"{province_column} IN ({codes})")
    if params.since is not None:
        clauses.append(f"toUnixTimestamp({time_column}) >= {_unix(params.since)}")
    return "WHERE " + " AND ".join(clauses)


def _requests(db: str, params: ReportParams) -> str:
    """The requests view, filtered, with the month label of the chosen calendar."""
    month = "jalali_month" if params.calendar == "jalali" else "toYYYYMM(submitted_at)"
    return (
        f"(SELECT *, toUInt32({month}) AS month FROM {db}.requests "
        f"{_filters(params, 'submitted_at')})"
    )


def backlog(db: str, params: ReportParams) -> str:
    """Open requests by province and body; breached ones and how overdue (hours past due)."""
    as_of = _unix(params.as_of)
    return f"""
SELECT
    province,
    body_id,
    count() AS open_requests,
    countIf(due_s > 0) AS breached,
    round(maxIf(({as_of} - due_s) / 3600, due_s > 0), 1) AS max_overdue_hours,
    round(avgIf(({as_of} - due_s) / 3600, due_s > 0), 1) AS mean_overdue_hours
FROM (SELECT request_id, province, body_id FROM {_requests(db, params)} WHERE is_open) AS r
ANY LEFT JOIN (
    SELECT request_id, argMax(toUnixTimestamp(due_at), occurred_ms) AS due_s
    FROM {db}.sla_events_unique
    WHERE event_type = 'SlaBreached'
    GROUP BY request_id
) AS b USING request_id
GROUP BY province, body_id
ORDER BY province, body_id"""


def sla(db: str, params: ReportParams) -> str:
    """On-time rate (resolved with no resolution breach / resolved) and breach counts."""
    return f"""
SELECT
    province,
    count() AS requests,
    countIf(resolved) AS resolved_requests,
    countIf(resolved AND res_b = 0) AS resolved_on_time,
    round(if(resolved_requests = 0, 0, resolved_on_time / resolved_requests * 100), 2)
        AS on_time_percent,
    sum(first_b) AS first_response_breaches,
    sum(res_b) AS resolution_breaches,
    sum(op_b) AS operational_breaches
FROM (SELECT request_id, province, resolved FROM {_requests(db, params)}) AS r
ANY LEFT JOIN (
    SELECT
        request_id,
        countIf(clock = 'FIRST_RESPONSE') AS first_b,
        countIf(clock = 'RESOLUTION') AS res_b,
        countIf(clock = 'OPERATIONAL') AS op_b
    FROM {db}.sla_events_unique
    WHERE event_type = 'SlaBreached'
    GROUP BY request_id
) AS b USING request_id
GROUP BY province
ORDER BY province"""


def durations(db: str, params: ReportParams) -> str:
    """Hours to first response and to resolution, p50 and p90 (wall clock)."""
    dimension = DIMENSIONS[params.by]
    response = "(toUnixTimestamp(first_response_at) - toUnixTimestamp(submitted_at)) / 3600"
    resolution = "(toUnixTimestamp(resolved_at) - toUnixTimestamp(submitted_at)) / 3600"
    return f"""
SELECT
    toString({dimension}) AS {params.by},
    countIf(responded) AS responded_requests,
    round(quantileExactIf(0.5)({response}, responded), 2) AS response_p50_hours,
    round(quantileExactIf(0.9)({response}, responded), 2) AS response_p90_hours,
    countIf(resolved) AS resolved_requests,
    round(quantileExactIf(0.5)({resolution}, resolved), 2) AS resolution_p50_hours,
    round(quantileExactIf(0.9)({resolution}, resolved), 2) AS resolution_p90_hours
FROM {_requests(db, params)}
GROUP BY {params.by}
ORDER BY {params.by}"""


def volume(db: str, params: ReportParams) -> str:
    """Requests by category and channel."""
    return f"""
SELECT category, channel, count() AS requests
FROM {_requests(db, params)}
GROUP BY category, channel
ORDER BY category, channel"""


def rereferral(db: str, params: ReportParams) -> str:
    """Share of requests transferred at least once, by where they ended up."""
    requests = _requests(db, params)
    return f"""
SELECT
    body_kind AS ended_at_kind,
    province AS ended_in_province,
    count() AS transferred,
    round(transferred / (SELECT count() FROM {requests}) * 100, 2) AS percent_of_requests
FROM {requests}
WHERE transfers > 0
GROUP BY ended_at_kind, ended_in_province
ORDER BY transferred DESC, ended_at_kind, ended_in_province"""


def alborz(db: str, params: ReportParams) -> str:
    """IR-30: Khaneh Samt vs the SAMT organization, before and after the delegation.

    The delegation date is the first referral of an Alborz request to a KHANEH_SAMT body found
    in the data (no such referral: every request counts as before).
    """
    resolution = "(toUnixTimestamp(resolved_at) - toUnixTimestamp(submitted_at)) / 3600"
    delegation = f"""(
        SELECT if(count() = 0, 4294967295, min(toUnixTimestamp(occurred_at)))
        FROM {db}.events_unique
        WHERE event_type = 'RequestReferred' AND province = 'IR-30' AND body_kind = 'KHANEH_SAMT'
    )"""
    return f"""
SELECT
    if(toUnixTimestamp(submitted_at) >= {delegation}, 'after', 'before') AS period,
    body_kind,
    count() AS requests,
    countIf(resolved) AS resolved_requests,
    round(quantileExactIf(0.5)({resolution}, resolved), 2) AS resolution_p50_hours,
    round(quantileExactIf(0.9)({resolution}, resolved), 2) AS resolution_p90_hours
FROM {_requests(db, params)}
WHERE province = 'IR-30'
GROUP BY period, body_kind
ORDER BY period DESC, body_kind"""


def heatmap(db: str, params: ReportParams) -> str:
    """SlaBreached counts by province and week (Jalali weeks start on Saturday)."""
    week = (
        "toString(jalali_year * 100 + jalali_week)"
        if params.calendar == "jalali"
        else "toString(toMonday(occurred_at))"
    )
    return f"""
SELECT province, {week} AS week, count() AS breaches
FROM {db}.sla_events_unique
{_filters(params, "occurred_at")} AND event_type = 'SlaBreached'
GROUP BY province, week
ORDER BY province, week"""


REPORTS: dict[str, Callable[[str, ReportParams], str]] = {
    "backlog": backlog,
    "sla": sla,
    "durations": durations,
    "volume": volume,
    "rereferral": rereferral,
    "alborz": alborz,
    "heatmap": heatmap,
}


def run(
    engine: Engine, name: str, params: ReportParams
) -> tuple[list[str], list[tuple[object, ...]]]:
    """Columns and rows of report ``name``."""
    return engine.query(REPORTS[name](engine.database, params))
