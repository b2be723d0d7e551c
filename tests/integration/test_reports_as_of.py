"""Reports at an instant, from the real worker's and sink's output, against the raw events.

Simulated national traffic (transfers within SAMT's remit and to other ministries, questions to
the applicant that pause the clocks, reopenings, announced office closures) goes through the
real worker and the real sink into ClickHouse. The test then recomputes, from the raw events
alone (what it published, and the referrals the worker recorded), every request's SLA clocks by
the rule in the README ("Transfers"), with a working-time calculator of its own (office hours of
a test calendar, minus the closures announced by the instant; not ``samt124.domain.calendar``),
and compares the headline figures of every report, and the demo's headline built from them, at
two instants: one in the middle of the traffic (only what had occurred by then counts) and one
after its end.

A second test shows that the figures do not depend on the worker's breach facts: the same
report at the same instant gives the same figures with the worker stopped (its breaches not yet
published) and after it ran on and published them.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import time as clock_time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jdatetime
import pytest

from consumers.analytics import html_report
from consumers.analytics.reports import ReportParams, run
from consumers.clickhouse.engine import Engine, opened
from consumers.clickhouse.migrations import migrate
from producers.simulator import simulate
from samt124.contract import wire
from samt124.domain.calendar import always_open, parse_config
from samt124.domain.events import (
    ApplicantResponded,
    Event,
    LetterRegistered,
    OfficeClosureAnnounced,
    RequestAwaitingApplicant,
    RequestClosed,
    RequestReopened,
    RequestResolved,
    RequestResponded,
    RequestSubmitted,
    RequestTransferred,
)
from samt124.domain.sla import single_policy
from samt124.kafka.admin import ensure_topics
from samt124.kafka.topics import Topics
from samt124.settings import Settings, parse_clickhouse_url
from tests.integration.pipeline import (
    REPO,
    Process,
    env_for,
    produce_raw,
    start,
    submission,
    wait_for,
)

pytestmark = pytest.mark.integration

TZ = ZoneInfo("Asia/Tehran")
US = 1_000_000
HOUR = 3_600 * US
SEED = 124
COUNT = 6_000
PER_DAY = 200.0  # national requests a day: about nine days of traffic, many lifecycles complete

# The test's office hours, in the calendar file the worker and the reports read, and here.
PYTHON_WEEKDAY = {"MON": 0, "TUE": 1, "WED": 2, "THU": 3, "FRI": 4, "SAT": 5, "SUN": 6}
HOURS: dict[str, dict[str, tuple[str, str]]] = {
    "*": {day: ("08:00", "16:00") for day in ("SAT", "SUN", "MON", "TUE", "WED")}
    | {"THU": ("08:00", "12:00")},
    "IR-30": {day: ("07:30", "13:30") for day in ("SUN", "MON", "TUE", "WED", "THU")},
}
CALENDAR = {
    "version": "test-as-of",
    "time_zone": "Asia/Tehran",
    "official_holidays": None,
    "schedules": {
        province: [
            {
                "effective_from": "2000-01-01",
                "week": {d: [f"{a}-{b}"] for d, (a, b) in week.items()},
            }
        ]
        for province, week in HOURS.items()
    },
}
# Targets in working hours: another ministry's own, and everyone else's.
TARGETS = {
    True: {"FIRST_RESPONSE": 6, "RESOLUTION": 120, "OPERATIONAL": 100},  # out of remit
    False: {"FIRST_RESPONSE": 3, "RESOLUTION": 20, "OPERATIONAL": 12},
}
POLICIES = {
    "versions": [
        {
            "version": "test-as-of",
            "effective_from": "2000-01-01T00:00:00+03:30",
            "warning_percents": [50],
            "escalation": {},
            "policies": [
                {
                    "id": "other-ministry",
                    "match": {"body_kinds": ["OTHER_MINISTRY"]},
                    "hours": TARGETS[True],
                },
                {"id": "samt", "match": {}, "hours": TARGETS[False]},
            ],
        }
    ]
}


# -- the test's own working time ---------------------------------------------------------------


def _us(t: datetime) -> int:
    return round(t.timestamp() * US)


@dataclass(frozen=True)
class Hours:
    """Working time in the test calendar, minus whole days of announced closures."""

    closed: dict[str, frozenset[date]]

    def windows(self, province: str, day: date) -> list[tuple[int, int]]:
        if day in self.closed.get(province, frozenset()):
            return []
        week = HOURS.get(province, HOURS["*"])
        name = next(n for n, number in PYTHON_WEEKDAY.items() if number == day.weekday())
        if name not in week:
            return []
        opening, closing = (time.fromisoformat(t) for t in week[name])
        start = datetime.combine(day, opening, TZ)
        end = datetime.combine(day, closing, TZ)
        return [(_us(start), _us(end))]

    def _days(self, start_us: int) -> Iterable[date]:
        day = datetime.fromtimestamp(start_us / US, TZ).date()
        while True:
            yield day
            day += timedelta(days=1)

    def between(self, province: str, a: int, b: int) -> int:
        total = 0
        for day in self._days(a):
            if _us(datetime.combine(day, time(0), TZ)) >= b:
                return total
            for opening, closing in self.windows(province, day):
                total += max(0, min(closing, b) - max(opening, a))
        raise AssertionError("unreachable")

    def add(self, province: str, start: int, amount: int) -> int:
        for day in self._days(start):
            for opening, closing in self.windows(province, day):
                begin = max(opening, start)
                if begin >= closing:
                    continue
                if amount <= closing - begin:
                    return begin + amount
                amount -= closing - begin
        raise AssertionError("unreachable")


# -- the test's own fold of the raw events -------------------------------------------------------


@dataclass
class Clock:
    cycle: int
    target: int
    elapsed: int = 0
    since: int | None = None
    stopped: bool = False
    deadline: int | None = None

    def bank(self, hours: Hours, province: str, t: int) -> None:
        if self.since is not None and t > self.since:
            self.elapsed += hours.between(province, self.since, t)
            self.since = t

    def pause(self, hours: Hours, province: str, t: int) -> None:
        self.bank(hours, province, t)
        self.since = None

    def elapsed_at(self, hours: Hours, province: str, t: int) -> int:
        if self.since is None or t <= self.since:
            return self.elapsed
        return self.elapsed + hours.between(province, self.since, t)


@dataclass
class Request:
    request_id: str
    category: str
    channel: str
    submitted: int
    province: str
    body_id: str
    kind: str
    status: str = "REFERRED"
    open: bool = True
    responded_at: int | None = None
    resolved_at: int | None = None
    transfers: int = 0
    holders: list[tuple[int, str]] = field(default_factory=list)
    clocks: dict[str, Clock] = field(default_factory=dict)
    breaches: dict[tuple[str, int], tuple[str, int]] = field(default_factory=dict)

    def judge(self, hours: Hours, t: int) -> None:
        """Each clock whose working time reached its target by ``t``: breached at its
        deadline, in the province holding the request then (once per clock and cycle)."""
        for name, c in self.clocks.items():
            key = (name, c.cycle)
            if key not in self.breaches and c.elapsed_at(hours, self.province, t) >= c.target:
                assert c.deadline is not None
                self.breaches[key] = (self.province, c.deadline)

    @property
    def outside(self) -> bool:
        return self.kind == "OTHER_MINISTRY"


def _fold_one(request: Request, event: Event, hours: Hours) -> None:
    """One event's effect on a request's clocks: the README's rule, step by step."""
    t = _us(event.occurred_at)
    request.judge(hours, t)  # what passed its deadline before this event changed anything
    province = request.province
    clocks = request.clocks
    if isinstance(event, RequestAwaitingApplicant):
        for c in clocks.values():
            c.pause(hours, province, t)
        request.status = "AWAITING_APPLICANT"
    elif isinstance(event, ApplicantResponded):
        for c in clocks.values():
            if not c.stopped and c.since is None:
                c.since = t
        request.status = "IN_PROGRESS"
    elif isinstance(event, RequestResponded):
        first = clocks["FIRST_RESPONSE"]
        if not first.stopped:
            first.pause(hours, province, t)
            first.stopped = True
        if request.responded_at is None:
            request.responded_at = t
        request.status = "RESPONDED"
    elif isinstance(event, RequestResolved | RequestClosed):
        for c in clocks.values():
            if not c.stopped:
                c.pause(hours, province, t)
                c.stopped = True
        request.open = False
        if isinstance(event, RequestResolved):
            request.resolved_at = t
    elif isinstance(event, RequestReopened):
        for name in ("RESOLUTION", "OPERATIONAL"):
            old = clocks[name]
            clocks[name] = Clock(old.cycle + 1, old.target, since=t)
        request.open = True
        request.status = "REOPENED"
    elif isinstance(event, RequestTransferred):
        outside = event.to_body_kind == "OTHER_MINISTRY"
        crosses = outside != request.outside
        since = None if request.status == "AWAITING_APPLICANT" else t
        clocks["FIRST_RESPONSE"].bank(hours, province, t)
        resolution = clocks["RESOLUTION"]
        if crosses:
            target = TARGETS[outside]["RESOLUTION"] * HOUR
            stopped = resolution.stopped
            clocks["RESOLUTION"] = Clock(
                resolution.cycle + 1, target, since=None if stopped else since, stopped=stopped
            )
        else:
            resolution.bank(hours, province, t)
        operational = clocks["OPERATIONAL"]
        target = TARGETS[outside]["OPERATIONAL"] * HOUR
        clocks["OPERATIONAL"] = Clock(operational.cycle + 1, target, since=since)
        request.province, request.body_id = event.to_province, event.to_body_id
        request.kind = event.to_body_kind
        request.holders.append((t, event.to_province))
        request.transfers += 1
        request.status = "REFERRED"
    for c in clocks.values():  # where each deadline lies, as the reports count it
        if c.since is not None and c.elapsed < c.target:
            c.deadline = hours.add(request.province, c.since, c.target - c.elapsed)


def fold(
    events: list[Event], referrals: dict[str, tuple[str, str, str, int]], as_of: datetime
) -> tuple[dict[str, Request], Hours]:
    """Every request as it stood at ``as_of``, from the events that occurred by then."""
    at = _us(as_of)
    known = [e for e in events if _us(e.occurred_at) <= at]
    closed: dict[str, set[date]] = defaultdict(set)
    for event in known:
        if isinstance(event, OfficeClosureAnnounced):
            day = event.first_day
            while day <= event.last_day:
                closed[event.province].add(day)
                day += timedelta(days=1)
    hours = Hours({p: frozenset(days) for p, days in closed.items()})
    requests: dict[str, Request] = {}
    for event in sorted(known, key=lambda e: (e.occurred_at, e.event_id)):
        if isinstance(event, RequestSubmitted | LetterRegistered):
            province, body_id, kind, _ = referrals[event.request_id]
            t = _us(event.occurred_at)
            targets = TARGETS[kind == "OTHER_MINISTRY"]
            request = Request(
                request_id=event.request_id,
                category=event.category,
                channel=event.channel if isinstance(event, RequestSubmitted) else "SECRETARIAT",
                submitted=t,
                province=province,
                body_id=body_id,
                kind=kind,
                holders=[(t, province)],
                clocks={
                    name: Clock(1, targets[name] * HOUR, since=t)
                    for name in ("FIRST_RESPONSE", "RESOLUTION", "OPERATIONAL")
                },
            )
            for c in request.clocks.values():
                c.deadline = hours.add(province, t, c.target)
            requests[event.request_id] = request
        elif event.request_id in requests:
            _fold_one(requests[event.request_id], event, hours)
    for request in requests.values():
        request.judge(hours, at)
    return requests, hours


def overdue(request: Request, name: str, hours: Hours, at: int) -> tuple[int, int] | None:
    """(working, clock) microseconds past the deadline of a clock; None: not past it."""
    c = request.clocks[name]
    elapsed = c.elapsed_at(hours, request.province, at)
    if elapsed < c.target:
        return None
    assert c.deadline is not None
    return elapsed - c.target, at - c.deadline


# -- what the reports should say -----------------------------------------------------------------


def expected_backlog(
    requests: dict[str, Request], hours: Hours, at: int
) -> dict[tuple[str, str], dict[str, Any]]:
    groups: dict[tuple[str, str], list[Request]] = defaultdict(list)
    for r in requests.values():
        if r.open:
            groups[(r.province, r.body_id)].append(r)
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for key, mine in groups.items():
        row: dict[str, Any] = {"open_requests": len(mine)}
        for clock, name in (
            ("FIRST_RESPONSE", "first_response"),
            ("RESOLUTION", "resolution"),
            ("OPERATIONAL", "operational"),
        ):
            late = [
                found
                for r in mine
                if not r.clocks[clock].stopped
                and (found := overdue(r, clock, hours, at)) is not None
            ]
            row[f"past_{name}_deadline"] = len(late)
            row[f"{name}_max_overdue_hours"] = max((c for _, c in late), default=0) / HOUR
            row[f"{name}_max_overdue_working_hours"] = max((w for w, _ in late), default=0) / HOUR
            row[f"{name}_mean_overdue_hours"] = (
                sum(c for _, c in late) / len(late) / HOUR if late else 0.0
            )
        out[key] = row
    return out


def expected_sla(requests: dict[str, Request], hours: Hours, at: int) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    by_province: dict[str, list[Request]] = defaultdict(list)
    for r in requests.values():
        by_province[r.province].append(r)
    for province, mine in by_province.items():
        late = {r.request_id for r in mine if overdue(r, "RESOLUTION", hours, at)}
        first_late = {r.request_id for r in mine if overdue(r, "FIRST_RESPONSE", hours, at)}
        done = [r for r in mine if not r.open]
        on_time = [r for r in done if r.request_id not in late]
        inside = [r for r in mine if not r.outside]
        in_on_time = sum(1 for r in inside if not r.open and r.request_id not in late)
        in_late = sum(1 for r in inside if r.request_id in late)
        responded = [r for r in mine if r.responded_at is not None]
        out[province] = {
            "requests": len(mine),
            "resolved_requests": len(done),
            "resolved_on_time": len(on_time),
            "late_resolution": len(late),
            "open_within_resolution": sum(1 for r in mine if r.open and r.request_id not in late),
            "out_of_remit_requests": len(mine) - len(inside),
            "resolution_on_time_percent_in_remit": (
                round(in_on_time / (in_on_time + in_late) * 100, 2) if in_on_time + in_late else 0
            ),
            "responded_requests": len(responded),
            "responded_on_time": sum(1 for r in responded if r.request_id not in first_late),
            "late_first_response": len(first_late),
            "operational_breaches": sum(
                1 for r in mine if overdue(r, "OPERATIONAL", hours, at) is not None
            ),
        }
    return out


def expected_heatmap(requests: dict[str, Request], since: int | None) -> dict[tuple[str, str], int]:
    """Breaches by province and the first day (a Saturday, Jalali) of their deadline's week."""
    cells: Counter[tuple[str, str]] = Counter()
    for r in requests.values():
        for province, deadline in r.breaches.values():
            if since is not None and deadline < since:
                continue
            day = datetime.fromtimestamp(deadline / US, TZ).date()
            saturday = day - timedelta(days=(day.weekday() - 5) % 7)
            start = jdatetime.date.fromgregorian(date=saturday).strftime("%Y-%m-%d")
            cells[(province, start)] += 1
    return dict(cells)


def expected_heatmap_gregorian(requests: dict[str, Request]) -> dict[tuple[str, str], int]:
    """Breaches by province and ISO week of their deadline (Tehran's day), labelled
    ``2024-W36 from 2024-09-02`` (the week's Monday)."""
    cells: Counter[tuple[str, str]] = Counter()
    for r in requests.values():
        for province, deadline in r.breaches.values():
            day = datetime.fromtimestamp(deadline / US, TZ).date()
            iso = day.isocalendar()
            monday = day - timedelta(days=day.weekday())
            cells[(province, f"{iso.year}-W{iso.week:02d} from {monday.isoformat()}")] += 1
    return dict(cells)


def nearest_rank_hours(values: list[int], level: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(1, math.ceil(level * len(ordered))) - 1] / HOUR, 2)


def holder_at(request: Request, at: int) -> str:
    return max((h for h in request.holders if h[0] <= at), default=request.holders[0])[1]


def expected_durations(requests: dict[str, Request], hours: Hours) -> dict[str, tuple[Any, ...]]:
    groups: dict[str, list[Request]] = defaultdict(list)
    for r in requests.values():
        groups[r.province].append(r)
    out = {}
    for province, mine in groups.items():
        response = [
            hours.between(holder_at(r, r.responded_at), r.submitted, r.responded_at)
            for r in mine
            if r.responded_at is not None
        ]
        resolution = [
            hours.between(holder_at(r, r.resolved_at), r.submitted, r.resolved_at)
            for r in mine
            if r.resolved_at is not None
        ]
        out[province] = (
            len(response),
            nearest_rank_hours(response, 0.5),
            nearest_rank_hours(response, 0.9),
            len(resolution),
            nearest_rank_hours(resolution, 0.5),
            nearest_rank_hours(resolution, 0.9),
        )
    return out


# -- running it ----------------------------------------------------------------------------------


def table(engine: Engine, name: str, params: ReportParams) -> list[dict[str, Any]]:
    columns, rows = run(engine, name, params)
    return [dict(zip(columns, row, strict=True)) for row in rows]


def configured(
    settings: Settings,
    tmp_path: Path,
    calendar: dict[str, Any],
    policy_file: dict[str, Any] = POLICIES,
) -> Settings:
    calendars = tmp_path / "calendars.json"
    calendars.write_text(json.dumps(calendar))
    policies = tmp_path / "policies.json"
    policies.write_text(json.dumps(policy_file))
    settings = settings.model_copy(update={"calendars": calendars, "sla_policies": policies})
    ensure_topics(settings)
    return settings


def send(settings: Settings, events: Sequence[Event]) -> None:
    topics = Topics(settings.topic_namespace)
    produce_raw(settings, topics.intake, [(wire.key(e), wire.encode(e)) for e in events])


def count(url: str, sql: str) -> int:
    target = parse_clickhouse_url(url)
    with opened(target, readonly=True) as engine:
        return int(engine.query(sql.format(db=target.database))[1][0][0])


def sink_until_idle(settings: Settings, url: str, log: Path) -> None:
    """``samt124 sink --until-idle``: load what the worker published so far, then stop."""
    with log.open("ab") as out:
        subprocess.run(
            [sys.executable, "-m", "samt124.cli", "sink", "--until-idle", "4"],
            env=env_for(settings, SAMT124_CLICKHOUSE_URL=url),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            check=True,
            timeout=600,
        )


def routed(settings: Settings, url: str, events: Sequence[Event], log: Path) -> None:
    """Wait until every event is stored (lifecycle events and the worker's deadlines)."""
    lifecycle = sum(1 for e in events if not isinstance(e, OfficeClosureAnnounced))
    requests = sum(1 for e in events if isinstance(e, RequestSubmitted | LetterRegistered))

    def done() -> bool:
        sink_until_idle(settings, url, log)
        stored = count(
            url,
            "SELECT count() FROM {db}.events_unique WHERE event_type NOT IN "
            "('RequestReferred', 'SlaWarning', 'SlaBreached', 'RequestEscalated')",
        )
        referrals = count(
            url, "SELECT count() FROM {db}.events_unique WHERE event_type = 'RequestReferred'"
        )
        closures = len(events) - lifecycle
        return stored == lifecycle + closures and referrals == requests

    wait_for(done, 600, "the worker and the sink to store every event", every=1)


def raw_referrals(url: str) -> dict[str, tuple[str, str, str, int]]:
    """The worker's referrals, as ClickHouse stored them: the holder each request started with."""
    target = parse_clickhouse_url(url)
    with opened(target, readonly=True) as engine:
        _, rows = engine.query(
            f"SELECT request_id, province, body_id, body_kind, occurred_ms "
            f"FROM {target.database}.events_unique WHERE event_type = 'RequestReferred'"
        )
    return {str(r[0]): (str(r[1]), str(r[2]), str(r[3]), int(r[4])) for r in rows}


def traffic(now: datetime) -> list[Event]:
    """Ten days of national traffic up to ``now`` (what would happen later is left out)."""
    start = now - timedelta(days=10)
    simulated = simulate(SEED, COUNT, start, requests_per_day=PER_DAY, closure_probability=0.05)
    return [e for e in simulated if e.occurred_at <= now]


def publish_through_the_worker(
    settings: Settings, url: str, events: Sequence[Event], tmp_path: Path
) -> Process:
    """Start the worker, publish the closures (so that it knows them all before any request's
    time is banked), then the requests' events; return the running worker."""
    worker = start(settings, "worker", log=tmp_path / "worker.log")
    closures = [e for e in events if isinstance(e, OfficeClosureAnnounced)]
    send(settings, closures)
    topics = Topics(settings.topic_namespace)
    from samt124.kafka.reader import read_topics

    wait_for(
        lambda: len(read_topics(settings, list(topics.provinces()))) >= len(closures),
        120,
        "the worker to record the closures",
    )
    send(settings, [e for e in events if not isinstance(e, OfficeClosureAnnounced)])
    return worker


def compare_at(url: str, events: list[Event], as_of: datetime) -> dict[str, int]:
    """Every report at ``as_of`` against the recomputation; returns a few totals."""
    requests, hours = fold(events, raw_referrals(url), as_of)
    at = _us(as_of)
    params = ReportParams(as_of=as_of, calendars=parse_config(CALENDAR))
    target = parse_clickhouse_url(url)
    with opened(target, readonly=True) as engine:
        backlog = table(engine, "backlog", params)
        sla = table(engine, "sla", params)
        durations = table(engine, "durations", params)
        volume = table(engine, "volume", params)
        rereferral = table(engine, "rereferral", params)
        since = as_of - timedelta(days=3)
        heatmaps = {
            window: table(engine, "heatmap", replace(params, since=window))
            for window in (None, since)
        }
        heatmap_gregorian = table(engine, "heatmap", replace(params, calendar="gregorian"))
        tables = {
            name: html_report.Table.of(*run(engine, name, params))
            for name in ("sla", "backlog", "durations", "heatmap")
        }

    # backlog: every clock on its own
    want_backlog = expected_backlog(requests, hours, at)
    got_backlog = {(r["province"], r["body_id"]): r for r in backlog}
    assert got_backlog.keys() == want_backlog.keys()
    for key, want in want_backlog.items():
        for column, value in want.items():
            if isinstance(value, int):
                assert got_backlog[key][column] == value, (key, column)
            else:
                assert got_backlog[key][column] == pytest.approx(value, abs=0.051), (key, column)

    # sla: each clock's on-time figures
    want_sla = expected_sla(requests, hours, at)
    got_sla = {r["province"]: r for r in sla}
    assert got_sla.keys() == want_sla.keys()
    for province, want in want_sla.items():
        for column, value in want.items():
            assert got_sla[province][column] == pytest.approx(value, abs=0.005), (
                province,
                column,
            )

    # durations: working hours to the first response and to resolution
    want_durations = expected_durations(requests, hours)
    got_durations = {
        r["province"]: (
            r["responded_requests"],
            r["response_p50_hours"],
            r["response_p90_hours"],
            r["resolved_requests"],
            r["resolution_p50_hours"],
            r["resolution_p90_hours"],
        )
        for r in durations
    }
    assert got_durations == want_durations

    # heatmap: breaches by province and week of their deadline, also from an instant on
    # (the dashboard's "today" and "this week"); the traffic spans no Jalali new year
    for window, rows in heatmaps.items():
        want_heat = expected_heatmap(requests, None if window is None else _us(window))
        got_heat = {(r["province"], str(r["week"]).split(" from ")[1]): r["breaches"] for r in rows}
        assert got_heat == want_heat, window
    got_gregorian = {(r["province"], r["week"]): r["breaches"] for r in heatmap_gregorian}
    assert got_gregorian == expected_heatmap_gregorian(requests)
    breaches = sum(len(r.breaches) for r in requests.values())
    recent = sum(expected_heatmap(requests, _us(since)).values())

    # volume and re-referral
    want_volume = Counter((r.category, r.channel) for r in requests.values())
    assert {(r["category"], r["channel"]): r["requests"] for r in volume} == dict(want_volume)
    want_moved = Counter((r.kind, r.province) for r in requests.values() if r.transfers)
    got_moved = {(r["ended_at_kind"], r["ended_in_province"]): r["transferred"] for r in rereferral}
    assert got_moved == dict(want_moved)

    # the demo's headline and HTML report, built from these reports
    data = html_report.ReportData(generated_at=as_of, reports=tables)
    figures = html_report.headline(data)
    open_requests = [r for r in requests.values() if r.open]
    res = [
        found
        for r in open_requests
        if (found := overdue(r, "RESOLUTION", hours, at)) and not r.clocks["RESOLUTION"].stopped
    ]
    first = [
        found
        for r in open_requests
        if not r.clocks["FIRST_RESPONSE"].stopped
        and (found := overdue(r, "FIRST_RESPONSE", hours, at))
    ]
    assert figures.open == len(open_requests)
    assert figures.past_resolution == len(res)
    assert figures.past_first_response == len(first)
    assert figures.requests == len(requests)
    text = html_report.headline_text(data)
    assert f"  {len(res):,} past their resolution deadline (" in text
    assert f"  {len(first):,} past their first-response deadline without a response" in text
    page = html_report.build_html(data)
    cells = [int(n) for n in re.findall(r'<rect class="cell"[^>]*data-count="(\d+)"', page)]
    assert sum(cells) == breaches
    for number, label in ((len(res), "resolution"), (len(first), "first-response")):
        card = rf"<b>{number:,}</b><span[^>]*>[^<]*</span><br><span>open past {label} deadline<"
        assert re.search(card, page), label
    if res:
        worst = max(w for w, _ in res) / HOUR
        assert figures.resolution_max_overdue_working_hours == pytest.approx(worst, abs=0.051)
    if first:
        worst = max(c for _, c in first) / HOUR
        assert figures.first_response_max_overdue_hours == pytest.approx(worst, abs=0.051)
    return {
        "requests": len(requests),
        "open": len(open_requests),
        "past_resolution": len(res),
        "past_first_response": len(first),
        "out_of_remit": sum(1 for r in requests.values() if r.outside),
        "transfers": sum(r.transfers for r in requests.values()),
        "reopened": sum(1 for r in requests.values() if r.clocks["RESOLUTION"].cycle > 1),
        "breaches": breaches,
        "recent_breaches": recent,
        "earlier_cycle_breaches": sum(
            1
            for r in requests.values()
            for name, cycle in r.breaches
            if cycle < r.clocks[name].cycle
        ),
    }


def test_reports_at_two_instants_match_a_recomputation_from_the_raw_events(
    settings: Settings, server_url: str, tmp_path: Path
) -> None:
    settings = configured(settings, tmp_path, CALENDAR)
    with opened(parse_clickhouse_url(server_url)) as engine:
        migrate(engine)
    events = traffic(datetime.now(UTC))
    kinds = Counter(type(e).__name__ for e in events)
    for kind in (
        "RequestTransferred",
        "RequestAwaitingApplicant",
        "RequestReopened",
        "OfficeClosureAnnounced",
    ):
        assert kinds[kind], kind
    worker = publish_through_the_worker(settings, server_url, events, tmp_path)
    try:
        routed(settings, server_url, events, tmp_path / "sink.log")
    finally:
        worker.stop()
    first_at = min(e.occurred_at for e in events)
    last_at = max(e.occurred_at for e in events)
    middle = first_at + (last_at - first_at) * 0.6
    later = last_at + timedelta(hours=30)
    early = compare_at(server_url, events, middle)
    final = compare_at(server_url, events, later)
    # the instants differ, and so do the figures: what had not occurred by then does not count
    assert early["requests"] < final["requests"]
    # both clocks have requests past their deadline at both instants (how many of each depends on
    # where the working week falls in the ten days before now; each figure was checked above)
    for figures in (early, final):
        assert figures["past_resolution"] > 0
        assert figures["past_first_response"] > 0
    assert final["out_of_remit"] > 0
    assert final["transfers"] > 0
    assert final["reopened"] > 0
    # breaches of every cycle count, not only the current one; a window holds fewer
    assert final["earlier_cycle_breaches"] > 0
    assert 0 < final["recent_breaches"] < final["breaches"]
    assert early["breaches"] < final["breaches"]
    # the command line gives the same figures for the same instant (ISO 8601 and Jalali)
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "samt124.cli",
            "report",
            "backlog",
            "--format",
            "json",
            "--as-of",
            later.astimezone(TZ).strftime("%Y-%m-%dT%H:%M:%S"),
        ],
        env=env_for(settings, SAMT124_CLICKHOUSE_URL=server_url),
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    rows = json.loads(cli.stdout)
    later_s = later.replace(microsecond=0)
    with opened(parse_clickhouse_url(server_url), readonly=True) as engine:
        direct = table(
            engine, "backlog", ReportParams(as_of=later_s, calendars=parse_config(CALENDAR))
        )
    assert rows == json.loads(json.dumps(direct))
    assert sum(int(r["past_resolution_deadline"]) for r in rows) == final["past_resolution"]


# -- the worker stopped and running ---------------------------------------------------------------

ALWAYS_OPEN = always_open("test-as-of-always-open")


def test_the_same_instant_gives_the_same_figures_with_the_worker_stopped_and_running(
    settings: Settings, server_url: str, tmp_path: Path
) -> None:
    """First-response deadlines of minutes pass while the worker is stopped: no breach fact is
    published for them, yet the report at an instant after them counts them; once the worker
    runs again past that instant and its breaches are loaded, the report is unchanged."""
    policies = single_policy("test-minutes", first_response_hours=0.2, resolution_hours=0.4)
    settings = configured(settings, tmp_path, ALWAYS_OPEN, policies)
    with opened(parse_clickhouse_url(server_url)) as engine:
        migrate(engine)
    now = datetime.now(UTC)
    events: list[Event] = []
    for i in range(240):  # one submission every 5 s over the last 20 minutes
        request = submission(
            province=("IR-23", "IR-30", "IR-07")[i % 3], at=now - timedelta(seconds=5 * i)
        )
        events.append(request)
        if i % 4 == 0 and request.province != "IR-30":  # answered by the SAMT organization
            at = request.occurred_at + timedelta(seconds=30)
            events.append(responded(request, min(at, now)))
    worker = publish_through_the_worker(settings, server_url, events, tmp_path)
    try:
        routed(settings, server_url, events, tmp_path / "sink.log")
    finally:
        worker.stop()
    breaches = "SELECT count() FROM {db}.sla_events_unique WHERE event_type = 'SlaBreached'"
    before = count(server_url, breaches)
    first_response_breaches = count(server_url, breaches + " AND clock = 'FIRST_RESPONSE'")
    as_of = datetime.now(UTC) + timedelta(minutes=1)  # a dozen deadlines fall due meanwhile
    params = ReportParams(as_of=as_of, calendars=parse_config(ALWAYS_OPEN))
    target = parse_clickhouse_url(server_url)
    names = ("backlog", "sla", "durations", "volume", "rereferral", "alborz", "heatmap")
    with opened(target, readonly=True) as engine:
        stopped = {name: run(engine, name, params) for name in names}
    # the worker runs again, past the instant: it publishes the breaches that fell due meanwhile
    again = start(settings, "worker", log=tmp_path / "worker-2.log")
    try:
        clock_time.sleep(max(0.0, (as_of - datetime.now(UTC)).total_seconds()) + 20)

        def published() -> bool:
            sink_until_idle(settings, server_url, tmp_path / "sink.log")
            return count(server_url, breaches) > before

        wait_for(published, 120, "the breaches published once the worker runs again")
    finally:
        again.stop()
    sink_until_idle(settings, server_url, tmp_path / "sink.log")
    assert count(server_url, breaches) > before
    with opened(target, readonly=True) as engine:
        running = {name: run(engine, name, params) for name in names}
    assert running == stopped
    columns, rows = stopped["backlog"]
    past = columns.index("past_first_response_deadline")
    # the stopped worker had published fewer breaches than the report counted at the instant
    assert sum(int(str(row[past])) for row in rows) > first_response_breaches


def responded(request: RequestSubmitted, at: datetime) -> RequestResponded:
    return RequestResponded(
        event_id=str(uuid.uuid4()),
        request_id=request.request_id,
        occurred_at=at,
        recorded_at=at,
        source="desk-124",
        actor=f"samt-org:{request.province}",  # the holder: only it may respond
        body_id=f"samt-org:{request.province}",
        message="پاسخ",
    )
