"""The reports analysts read: SQL over the deduplicated views, finished in Python.

Every report reads ``events_unique``, ``sla_events_unique`` or the ``requests`` view built on
them, so each event counts once however often the sink delivered it. The SQL is portable
between ClickHouse 18.16 and current ClickHouse (no positional GROUP BY, explicit ``ANY``
joins, one join per SELECT) and returns only strings, numbers and arrays, so both engines print
the same figures.

Durations are **working hours**: ClickHouse gives each request's submission, first response
and last resolution instants (milliseconds) and who held it when; Python counts the working
time between them with the shared business calendar (:mod:`samt124.domain.calendar`: office hours,
official holidays, and the ``OfficeClosureAnnounced`` closures found in ``events_unique``),
in the calendar of the *answering province*, the province that held the request (its last
referral or transfer) at the instant of the answer. Quantiles are nearest-rank
(:func:`nearest_rank`) over whole microseconds, rounded to hundredths of an hour at the end.

Periods are labelled in the chosen calendar, in Tehran time: Jalali months as
``1403-06 (Shahrivar)``, weeks as ``1403-W24 from 1403-06-10`` (Jalali weeks start on
Saturday), instants as ``1403-06-11 12:30``; Gregorian ones as ``2024-09``,
``2024-W36 from 2024-09-02`` (ISO weeks) and ``2024-09-01 12:30``. ``with_gregorian`` adds the
Gregorian dates to Jalali labels.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from consumers.analytics import dead_letters
from consumers.analytics.clocks import (
    CLOCKS,
    Breach,
    ClockAt,
    as_of_ms,
    breaches,
    deadlines_sql,
    fold,
)
from consumers.clickhouse.engine import Engine, quote
from samt124.domain.calendar import Calendar, CalendarConfig, Closure, load_config
from samt124.domain.lifecycle import in_remit
from samt124.domain.tehran_time import (
    JALALI_MONTHS,
    US_PER_HOUR,
    from_us,
    gregorian,
    jalali,
    jalali_day,
    jalali_week_start,
    start_of_day,
    tehran,
    to_us,
)

CalendarKind = Literal["jalali", "gregorian"]
INTAKE = "('RequestSubmitted', 'LetterRegistered')"
HOLDERS = "('RequestReferred', 'RequestTransferred')"
ALBORZ = "IR-30"
DURATION_NOTE = (
    "hours are working hours of the answering province: office hours, official holidays "
    "and announced closures"
)
DIMENSIONS = {
    "province": "province",
    "body": "body_id",
    "category": "category",
    "month": "month",
}

Table = tuple[list[str], list[tuple[object, ...]]]


@dataclass(frozen=True)
class ReportParams:
    calendar: CalendarKind = "jalali"
    provinces: tuple[str, ...] = ()
    since: datetime | None = None  # requests submitted (facts occurred) from this instant on
    as_of: datetime = field(default_factory=lambda: datetime.now(UTC))
    by: str = "province"  # durations and sla: province, body, category or month
    with_gregorian: bool = False  # Jalali labels also show the Gregorian dates
    calendars: CalendarConfig | None = None  # office hours; None: the shipped calendars


def parse_since(text: str, calendar: CalendarKind) -> datetime:
    """``YYYY-MM-DD`` (Jalali when the calendar is Jalali) as the start of that day in Tehran."""
    year, month, day = (int(part) for part in text.replace("/", "-").split("-"))
    day_of = gregorian(year, month, day) if calendar == "jalali" else date(year, month, day)
    return start_of_day(day_of)


# -- labels ----------------------------------------------------------------------------------


def month_label(key: int, params: ReportParams) -> str:
    """``YYYYMM`` of the chosen calendar as ``1403-06 (Shahrivar)`` or ``2024-09``."""
    year, month = divmod(key, 100)
    if params.calendar == "gregorian":
        return f"{year:04d}-{month:02d}"
    label = f"{year:04d}-{month:02d} ({JALALI_MONTHS[month - 1]})"
    if params.with_gregorian:
        first = gregorian(year, month, 1)
        last = gregorian(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
        label += f" [{first.isoformat()}..{last.isoformat()}]"
    return label


def week_label(year: int, week: int, params: ReportParams) -> str:
    """A week of the chosen calendar: ``1403-W24 from 1403-06-10`` or ``2024-W36 from ...``."""
    if params.calendar == "gregorian":
        monday = date.fromisocalendar(year, week, 1)
        return f"{year:04d}-W{week:02d} from {monday.isoformat()}"
    start = jalali_week_start(year, week)
    label = f"{year:04d}-W{week:02d} from {start.strftime('%Y-%m-%d')}"
    if params.with_gregorian:
        label += f" [{start.togregorian().isoformat()}]"
    return label


def instant_label(t: datetime, params: ReportParams) -> str:
    """An instant in Tehran time, in the chosen calendar, to the minute."""
    local = tehran(t)
    western = local.strftime("%Y-%m-%d %H:%M")
    if params.calendar == "gregorian":
        return western
    day = jalali_day(local.date())
    label = f"{day.year:04d}-{day.month:02d}-{day.day:02d} {local.strftime('%H:%M')}"
    return f"{label} [{western}]" if params.with_gregorian else label


# -- working time ----------------------------------------------------------------------------


def nearest_rank(values: Sequence[int], level: float) -> int:
    """The nearest-rank quantile: the ``ceil(level * n)``-th smallest value (1-based)."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    return ordered[max(1, math.ceil(level * len(ordered))) - 1]


def working_hours(values: Sequence[int], level: float) -> float | None:
    """A nearest-rank quantile of working microseconds, in hours to two decimals."""
    return round(nearest_rank(values, level) / US_PER_HOUR, 2) if values else None


def holder_at(holders: Iterable[tuple[int, str]], at_ms: int, fallback: str) -> str:
    """The province holding a request at ``at_ms``: its last referral or transfer by then."""
    held = [(ms, province) for ms, province in holders if ms <= at_ms]
    return max(held)[1] if held else fallback


def closures_sql(db: str, as_of: datetime | None = None) -> str:
    """Every office closure announced (by ``as_of``, when given; the payload is JSON as
    :func:`consumers.sink.rows.payload` writes it; the pattern also accepts a space after the
    colon)."""
    known = "" if as_of is None else f" AND occurred_ms <= {as_of_ms(as_of)}"
    return f"""
SELECT
    province,
    extract(payload, '"first_day": *"([0-9-]+)"') AS first_day,
    extract(payload, '"last_day": *"([0-9-]+)"') AS last_day
FROM {db}.events_unique
WHERE event_type = 'OfficeClosureAnnounced'{known}
ORDER BY province, first_day, last_day"""


def business_calendar(engine: Engine, params: ReportParams) -> Calendar:
    """The shared calendar with every closure announced by ``params.as_of``."""
    closures: dict[str, list[Closure]] = defaultdict(list)
    for province, first, last in engine.query(closures_sql(engine.database, params.as_of))[1]:
        closure = Closure(str(province), date.fromisoformat(first), date.fromisoformat(last))
        closures[closure.province].append(closure)
    config = params.calendars or load_config()
    return Calendar(config, {p: tuple(c) for p, c in closures.items()})


@dataclass(frozen=True)
class Timing:
    """One request's dimensions and its answers' working time (microseconds)."""

    province: str
    body_id: str
    body_kind: str
    category: str
    month: int
    submitted_ms: int
    response_us: int | None
    resolution_us: int | None


# -- SQL builders (pure) ---------------------------------------------------------------------


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


def _known(params: ReportParams) -> str:
    """The facts known at ``params.as_of``: those that occurred by then."""
    return f"occurred_ms <= {as_of_ms(params.as_of)}"


def requests_sql(db: str, params: ReportParams) -> str:
    """The ``requests`` view (002_requests_and_aggregates.sql) as it stood at ``params.as_of``:
    the same fold, over the facts that occurred by then."""
    return f"""
    SELECT
        request_id,
        minIf(at, kind IN {INTAKE}) AS submitted_at,
        anyIf(c, kind IN {INTAKE}) AS category,
        anyIf(ch, kind IN {INTAKE}) AS channel,
        anyIf(pr, kind IN {INTAKE}) AS priority,
        anyIf(p, kind IN {INTAKE}) AS submitted_province,
        argMaxIf(p, ms, kind IN {HOLDERS}) AS referred_province,
        if(referred_province = '', submitted_province, referred_province) AS province,
        argMaxIf(b, ms, kind IN {HOLDERS}) AS body_id,
        argMaxIf(k, ms, kind IN {HOLDERS}) AS body_kind,
        argMaxIf(rule, ms, kind = 'RequestReferred') AS rule_id,
        anyIf(jmonth, kind IN {INTAKE}) AS jalali_month,
        countIf(kind = 'RequestTransferred') AS transfers,
        countIf(kind = 'RequestResponded') > 0 AS responded,
        minIf(at, kind = 'RequestResponded') AS first_response_at,
        countIf(kind = 'RequestResolved') > 0 AS resolved,
        maxIf(at, kind = 'RequestResolved') AS resolved_at,
        argMaxIf(
            kind,
            ms,
            kind IN (
                'RequestSubmitted', 'LetterRegistered', 'RequestResolved', 'RequestClosed',
                'RequestReopened'
            )
        ) AS last_status_event,
        last_status_event NOT IN ('RequestResolved', 'RequestClosed') AS is_open
    FROM (
        SELECT
            request_id,
            event_type AS kind,
            province AS p,
            body_id AS b,
            body_kind AS k,
            category AS c,
            channel AS ch,
            priority AS pr,
            visitParamExtractString(payload, 'rule_id') AS rule,
            occurred_at AS at,
            occurred_ms AS ms,
            jalali_year * 100 + jalali_month AS jmonth
        FROM {db}.events_unique
        WHERE event_type NOT IN (
            'OfficeClosureAnnounced', 'SlaWarning', 'SlaBreached', 'RequestEscalated'
        ) AND {_known(params)}
    )
    GROUP BY request_id
    HAVING countIf(kind IN {INTAKE}) > 0"""


def _requests(db: str, params: ReportParams) -> str:
    """The requests as they stood at ``params.as_of``, filtered, with the month (YYYYMM) of the
    chosen calendar."""
    month = "jalali_month" if params.calendar == "jalali" else "toYYYYMM(submitted_at)"
    return (
        f"(SELECT *, toUInt32({month}) AS month FROM ({requests_sql(db, params)}) "
        f"{_filters(params, 'submitted_at')})"
    )


def timings_sql(db: str, params: ReportParams) -> str:
    """Per request: dimensions, answer instants (ms) and who held it when."""
    return f"""
SELECT
    request_id, province, body_id, body_kind, category, month, submitted_province,
    responded, resolved, submitted_ms, response_ms, resolved_ms, holder_ms, holder_province
FROM (
    SELECT
        request_id, province, body_id, body_kind, category, month, submitted_province,
        responded, resolved
    FROM {_requests(db, params)}
) AS r
ANY INNER JOIN (
    SELECT
        request_id,
        minIf(occurred_ms, event_type IN {INTAKE}) AS submitted_ms,
        minIf(occurred_ms, event_type = 'RequestResponded') AS response_ms,
        maxIf(occurred_ms, event_type = 'RequestResolved') AS resolved_ms,
        groupArrayIf(occurred_ms, event_type IN {HOLDERS}) AS holder_ms,
        groupArrayIf(province, event_type IN {HOLDERS}) AS holder_province
    FROM {db}.events_unique
    WHERE event_type IN (
        'RequestSubmitted', 'LetterRegistered', 'RequestResponded', 'RequestResolved',
        'RequestReferred', 'RequestTransferred'
    ) AND {_known(params)}
    GROUP BY request_id
) AS t USING request_id
ORDER BY request_id"""


def backlog_sql(db: str, params: ReportParams) -> str:
    """The requests open at ``params.as_of``: id, province and body holding them."""
    return f"""
SELECT request_id, province, body_id
FROM {_requests(db, params)}
WHERE is_open
ORDER BY province, body_id, request_id"""


def sla_sql(db: str, params: ReportParams) -> str:
    """Per request at ``params.as_of``, by ``params.by``: whether it is done, has had a
    response, and the kind of body holding it (its clocks are judged by :func:`sla`)."""
    dimension = DIMENSIONS[params.by]
    return f"""
SELECT request_id, {dimension} AS key, NOT is_open AS done, responded, body_kind
FROM {_requests(db, params)}
ORDER BY key, request_id"""


def volume_sql(db: str, params: ReportParams) -> str:
    """Requests by category and channel."""
    return f"""
SELECT category, channel, count() AS requests
FROM {_requests(db, params)}
GROUP BY category, channel
ORDER BY category, channel"""


def rereferral_sql(db: str, params: ReportParams) -> str:
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


def delegation_sql(db: str, as_of: datetime | None = None) -> str:
    """When delegation began: the submission of the first Alborz request sent to Khaneh Samt
    (by ``as_of``, when given)."""
    known = "" if as_of is None else f" AND occurred_ms <= {as_of_ms(as_of)}"
    return f"""
SELECT count(), min(occurred_ms)
FROM {db}.events_unique
WHERE event_type IN {INTAKE}{known} AND request_id IN (
    SELECT request_id
    FROM {db}.events_unique
    WHERE event_type = 'RequestReferred' AND province = {quote(ALBORZ)}
        AND body_kind = 'KHANEH_SAMT'{known}
)"""


QUERIES: dict[str, Callable[[str, ReportParams], str]] = {
    "backlog": backlog_sql,
    "sla": sla_sql,
    "durations": timings_sql,
    "volume": volume_sql,
    "rereferral": rereferral_sql,
    "alborz": timings_sql,
    "heatmap": lambda db, params: deadlines_sql(db, params.as_of),
    "dead-letters": lambda db, params: dead_letters.by_reason_sql(db, params.since, params.as_of),
}


# -- reports ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Answered:
    """One request's submission and holders: working time until an answer."""

    calendar: Calendar
    submitted_ms: int
    holders: list[tuple[int, str]]
    fallback: str

    def after(self, at_ms: int) -> int:
        """Working microseconds from submission to ``at_ms`` in the answering province."""
        province = holder_at(self.holders, at_ms, self.fallback)
        return self.calendar.working_us_between(province, self.submitted_ms * 1000, at_ms * 1000)


def timings(engine: Engine, params: ReportParams) -> list[Timing]:
    """Every request's working time to its first response and to its last resolution."""
    calendar = business_calendar(engine, params)
    found = []
    for row in engine.query(timings_sql(engine.database, params))[1]:
        (_, province, body_id, body_kind, category, month, submitted_province) = row[:7]
        responded, resolved, submitted_ms, response_ms, resolved_ms = map(int, row[7:12])
        holders = list(zip(map(int, row[12]), map(str, row[13]), strict=True))
        fallback = str(submitted_province) or str(province)
        answered = _Answered(calendar, submitted_ms, holders, fallback)
        found.append(
            Timing(
                province=str(province),
                body_id=str(body_id),
                body_kind=str(body_kind),
                category=str(category),
                month=int(month),
                submitted_ms=submitted_ms,
                response_us=answered.after(response_ms) if responded else None,
                resolution_us=answered.after(resolved_ms) if resolved else None,
            )
        )
    return found


def _key(timing: Timing, by: str) -> Any:
    return {
        "province": timing.province,
        "body": timing.body_id,
        "category": timing.category,
        "month": timing.month,
    }[by]


def _label(key: Any, params: ReportParams) -> object:
    return month_label(int(key), params) if params.by == "month" else key


def durations(engine: Engine, params: ReportParams) -> Table:
    """Working hours to first response and to resolution, p50 and p90, by ``params.by``."""
    groups: dict[Any, list[Timing]] = defaultdict(list)
    for timing in timings(engine, params):
        groups[_key(timing, params.by)].append(timing)
    columns = [
        params.by,
        "responded_requests",
        "response_p50_hours",
        "response_p90_hours",
        "resolved_requests",
        "resolution_p50_hours",
        "resolution_p90_hours",
    ]
    rows: list[tuple[object, ...]] = []
    for key in sorted(groups):
        response = [t.response_us for t in groups[key] if t.response_us is not None]
        resolution = [t.resolution_us for t in groups[key] if t.resolution_us is not None]
        rows.append(
            (
                _label(key, params),
                len(response),
                working_hours(response, 0.5),
                working_hours(response, 0.9),
                len(resolution),
                working_hours(resolution, 0.5),
                working_hours(resolution, 0.9),
            )
        )
    return columns, rows


def clocks_at(
    engine: Engine, params: ReportParams, calendar: Calendar
) -> dict[str, dict[str, ClockAt]]:
    """Every request's clocks as they stood at ``params.as_of`` (:mod:`.clocks`)."""
    return fold(engine.query(deadlines_sql(engine.database, params.as_of))[1], calendar)


def backlog_columns() -> list[str]:
    """``open_requests``, then per clock: how many are past its deadline and by how much."""
    columns = ["province", "body_id", "open_requests"]
    for _, name in CLOCKS:
        columns += [
            f"past_{name}_deadline",
            f"{name}_max_overdue_hours",
            f"{name}_mean_overdue_hours",
            f"{name}_max_overdue_working_hours",
            f"{name}_mean_overdue_working_hours",
        ]
    return columns


@dataclass(frozen=True)
class OpenAt:
    """An open request at an instant: who holds it, and per clock how far past its deadline
    it is (``(working, clock)`` microseconds; None: not past it, stopped or no such clock)."""

    request_id: str
    province: str
    body_id: str
    clocks: dict[str, ClockAt]
    past: dict[str, tuple[int, int] | None]


def open_at(engine: Engine, params: ReportParams) -> list[OpenAt]:
    """Every request open at ``params.as_of`` (filtered as ``params`` says) with its clocks,
    judged at that instant with the report's calendar (:mod:`.clocks`)."""
    calendar = business_calendar(engine, params)
    clocks = clocks_at(engine, params, calendar)
    at = to_us(params.as_of)
    found = []
    for request_id, province, body_id in engine.query(backlog_sql(engine.database, params))[1]:
        mine = clocks.get(str(request_id), {})
        past = {  # a stopped clock (the first response given) is no longer overdue
            name: (
                clock.overdue(at, calendar)
                if (clock := mine.get(name)) and not clock.stopped
                else None
            )
            for _, name in CLOCKS
        }
        found.append(OpenAt(str(request_id), str(province), str(body_id), mine, past))
    return found


def backlog(engine: Engine, params: ReportParams) -> Table:
    """Open requests at ``params.as_of`` by province and body; per clock, those past its
    deadline then and how overdue.

    Each clock has its own columns (:data:`~consumers.analytics.clocks.CLOCKS`): the first
    response (a request answered is not past it), the resolution of the current cycle and the
    operational target of the body holding it. Whether a request is past a deadline is computed
    from its clocks and the instant (:mod:`consumers.analytics.clocks`), not from breach facts;
    overdue counts from the deadline to ``params.as_of``, in clock hours and in working hours
    of the request's province.
    """
    groups: dict[tuple[str, str], list[dict[str, tuple[int, int] | None]]] = defaultdict(list)
    for request in open_at(engine, params):
        groups[(request.province, request.body_id)].append(request.past)
    rows: list[tuple[object, ...]] = []
    for (province, body_id), requests in sorted(groups.items()):
        cells: list[object] = [province, body_id, len(requests)]
        for _, name in CLOCKS:
            over = [found for r in requests if (found := r[name]) is not None]
            clock_h = [c / US_PER_HOUR for _, c in over]
            working_h = [w / US_PER_HOUR for w, _ in over]
            cells += [
                len(over),
                _rounded(max(clock_h, default=0.0)),
                _rounded(sum(clock_h) / len(clock_h) if clock_h else 0.0),
                _rounded(max(working_h, default=0.0)),
                _rounded(sum(working_h) / len(working_h) if working_h else 0.0),
            ]
        rows.append(tuple(cells))
    return backlog_columns(), rows


def _rounded(hours: float) -> float:
    return round(hours, 1)


def delegation_start(engine: Engine, as_of: datetime | None = None) -> datetime | None:
    """The instant delegation to Khaneh Samt began in Alborz (None: not in the data by
    ``as_of``)."""
    [(count, first_ms)] = engine.query(delegation_sql(engine.database, as_of))[1]
    if not int(count):
        return None
    return datetime.fromtimestamp(int(first_ms) / 1000, UTC)


def alborz(engine: Engine, params: ReportParams) -> Table:
    """IR-30: Khaneh Samt vs the SAMT organization, before and after the delegation.

    Delegation begins with the submission of the first Alborz request referred to a
    KHANEH_SAMT body (none: every request counts as before); requests submitted from that
    instant on count as after. Resolution times are working hours.
    """
    start = delegation_start(engine, params.as_of)
    start_ms = int(start.timestamp() * 1000) if start is not None else None
    groups: dict[tuple[str, str], list[Timing]] = defaultdict(list)
    for timing in timings(engine, params):
        if timing.province != ALBORZ:
            continue
        after = start_ms is not None and timing.submitted_ms >= start_ms
        groups[("after" if after else "before", timing.body_kind)].append(timing)
    delegation = instant_label(start, params) if start is not None else "none"
    columns = [
        "period",
        "body_kind",
        "delegation_from",
        "requests",
        "resolved_requests",
        "resolution_p50_hours",
        "resolution_p90_hours",
    ]
    rows: list[tuple[object, ...]] = []
    for period, kind in sorted(groups, key=lambda k: (k[0] != "before", k[1])):
        group = groups[(period, kind)]
        resolution = [t.resolution_us for t in group if t.resolution_us is not None]
        rows.append(
            (
                period,
                kind,
                delegation,
                len(group),
                len(resolution),
                working_hours(resolution, 0.5),
                working_hours(resolution, 0.9),
            )
        )
    return columns, rows


SLA_COLUMNS = (
    "requests",
    "resolved_requests",
    "resolved_on_time",
    "late_resolution",
    "open_within_resolution",
    "resolution_on_time_percent",
    "out_of_remit_requests",
    "resolution_on_time_percent_in_remit",
    "responded_requests",
    "responded_on_time",
    "late_first_response",
    "first_response_on_time_percent",
    "first_response_breaches",
    "resolution_breaches",
    "operational_breaches",
)


def _percent(part: int, whole: int) -> float:
    return round(part / whole * 100, 2) if whole else 0.0


def sla(engine: Engine, params: ReportParams) -> Table:
    """Each clock's on-time figures at ``params.as_of`` in their own named columns, by
    ``params.by``, computed from the requests' clocks and that instant (not from breach facts).

    Resolution: a request is late (``late_resolution``) when the current cycle of its resolution
    clock (README "Transfers": a reopening and a transfer across SAMT's remit start a new one)
    reached its target, resolved on time when it is resolved or closed before that, and neither
    (``open_within_resolution``) while open within it; the on-time rate is on time / (on time +
    late). ``resolution_on_time_percent_in_remit`` is the same rate over the requests held within
    SAMT's remit only (``out_of_remit_requests``, held by another ministry, are judged by that
    ministry's policy and left out of it).

    First response: late (``late_first_response``) when its clock reached its target (answered
    late or not yet), on time when answered before; the rate is on time / (on time + late).
    ``*_breaches``: requests whose current cycle of that clock is past its target.
    """
    calendar = business_calendar(engine, params)
    clocks = clocks_at(engine, params, calendar)
    at = to_us(params.as_of)
    groups: dict[Any, list[int]] = defaultdict(lambda: [0] * 14)
    for request_id, key, done_, responded_, body_kind in engine.query(
        sla_sql(engine.database, params)
    )[1]:
        mine = clocks.get(str(request_id), {})

        def past(name: str, mine: dict[str, ClockAt] = mine) -> bool:
            clock = mine.get(name)
            return clock is not None and clock.overdue(at, calendar) is not None

        late, first_late, op_late = past("resolution"), past("first_response"), past("operational")
        done, responded = bool(int(done_)), bool(int(responded_))
        remit = in_remit(str(body_kind)) if body_kind else True  # type: ignore[arg-type]
        counts = groups[key]
        for index, add in enumerate(
            (
                1,
                done,
                done and not late,
                late,
                not done and not late,
                not remit,
                remit and done and not late,
                remit and late,
                responded,
                responded and not first_late,
                first_late,
                first_late,
                late,
                op_late,
            )
        ):
            counts[index] += int(add)
    rows: list[tuple[object, ...]] = []
    for key in sorted(groups):
        (requests, resolved, on_time, late_n, waiting, out, remit_on_time, remit_late) = groups[
            key
        ][:8]
        responded_n, answered, late_first, first_b, res_b, op_b = groups[key][8:]
        rows.append(
            (
                _label(key, params),
                requests,
                resolved,
                on_time,
                late_n,
                waiting,
                _percent(on_time, on_time + late_n),
                out,
                _percent(remit_on_time, remit_on_time + remit_late),
                responded_n,
                answered,
                late_first,
                _percent(answered, answered + late_first),
                first_b,
                res_b,
                op_b,
            )
        )
    return [params.by, *SLA_COLUMNS], rows


def week_of(t: datetime, params: ReportParams) -> tuple[int, int]:
    """``(year, week)`` of instant ``t`` in Tehran: a Jalali week (from Saturday) or an ISO
    week (from Monday)."""
    if params.calendar == "gregorian":
        year, week, _ = tehran(t).isocalendar()
        return year, week
    day = jalali(t)
    return day.year, day.week


def breaches_at(engine: Engine, params: ReportParams) -> list[Breach]:
    """The clock cycles past their target by ``params.as_of`` whose deadline fell from
    ``params.since`` on, in ``params.provinces`` (the province holding the request at the
    deadline), computed from the requests' clocks (:func:`.clocks.breaches`)."""
    calendar = business_calendar(engine, params)
    rows = engine.query(deadlines_sql(engine.database, params.as_of))[1]
    since = None if params.since is None else to_us(params.since)
    return [
        breach
        for breach in breaches(rows, calendar, to_us(params.as_of))
        if (since is None or breach.due_us >= since)
        and (not params.provinces or breach.province in params.provinces)
    ]


def heatmap(engine: Engine, params: ReportParams) -> Table:
    """SLA breaches by province and week of the chosen calendar, at ``params.as_of``.

    A breach is a cycle of a request's clock (first response, resolution, operational) whose
    deadline passed before the clock stopped; it counts in the week of its deadline and the
    province holding the request then. Computed from the clocks (:func:`breaches_at`), not
    from the ``SlaBreached`` facts the worker published.
    """
    counts: Counter[tuple[str, int, int]] = Counter(
        (breach.province, *week_of(from_us(breach.due_us), params))
        for breach in breaches_at(engine, params)
    )
    labelled: list[tuple[object, ...]] = [
        (province, week_label(year, week, params), count)
        for (province, year, week), count in sorted(counts.items())
    ]
    return ["province", "week", "breaches"], labelled


def _plain(build: Callable[[str, ReportParams], str]) -> Callable[[Engine, ReportParams], Table]:
    def report(engine: Engine, params: ReportParams) -> Table:
        return engine.query(build(engine.database, params))

    report.__doc__ = build.__doc__
    return report


def dead_letters_by_reason(engine: Engine, params: ReportParams) -> Table:
    """Dead letters by the kind of their reason, dead-lettered from ``since`` to ``as_of``."""
    return dead_letters.by_reason(
        engine, params.since, lambda t: instant_label(t, params), params.as_of
    )


REPORTS: dict[str, Callable[[Engine, ReportParams], Table]] = {
    "backlog": backlog,
    "sla": sla,
    "durations": durations,
    "volume": _plain(volume_sql),
    "rereferral": _plain(rereferral_sql),
    "alborz": alborz,
    "heatmap": heatmap,
    "dead-letters": dead_letters_by_reason,
}


def run(engine: Engine, name: str, params: ReportParams) -> Table:
    """Columns and rows of report ``name``."""
    return REPORTS[name](engine, params)
