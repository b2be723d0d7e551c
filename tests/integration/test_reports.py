"""Every report's figures, on both engines, against a recomputation from the raw events.

The data: simulated lifecycles, the referrals the router would add (Alborz industrial, trade and
general requests go to Khaneh Samt from a delegation date on), SLA breaches for slow requests
(per resolution cycle, and for requests still open past their due time), and office closures
announced for Alborz and Tehran. Every batch is stored twice, so the reports also prove that
they count each event once. Durations are recomputed here in working time with the shared
calendar and the announced closures, and compared exactly.

The SLA, backlog and heatmap reports compute which requests are past which deadline from the
clocks the worker records (``SlaDeadlinesSet``), which this data does not have: they are checked
against the real worker's output in ``test_reports_as_of.py`` (the heatmap in both calendars).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import pytest

from consumers.analytics.reports import ReportParams, run
from consumers.clickhouse.engine import Engine, opened
from consumers.clickhouse.migrations import migrate
from consumers.sink.loader import Message, build_batch, store
from consumers.sink.rows import Position
from producers.simulator import simulate
from samt124.contract.wire import encode
from samt124.domain.calendar import Calendar, Closure, load_config
from samt124.domain.catalogue import CATALOGUE
from samt124.domain.events import (
    Event,
    LetterRegistered,
    OfficeClosureAnnounced,
    RequestClosed,
    RequestReferred,
    RequestReopened,
    RequestResolved,
    RequestResponded,
    RequestSubmitted,
    RequestTransferred,
    SlaBreached,
    derived_id,
)
from samt124.domain.tehran_time import TEHRAN, jalali
from samt124.kafka.topics import Topics
from samt124.settings import parse_clickhouse_url

pytestmark = pytest.mark.integration

START = datetime(2024, 9, 16, tzinfo=UTC)  # 1403-06-26: the data crosses into Mehr 1403
DELEGATION = START + timedelta(hours=9)
AS_OF = datetime(2024, 10, 10, tzinfo=UTC)
TOPICS = Topics("rep")
RESPONSE_TARGET = timedelta(hours=30)
RESOLUTION_TARGET = timedelta(hours=60)
# Announced closures: Alborz for two days (one of them a working Sunday), Tehran for one.
CLOSURES = (
    ("IR-30", date(2024, 9, 21), date(2024, 9, 22)),
    ("IR-23", date(2024, 9, 18), date(2024, 9, 18)),
)
JALALI_MONTH_NAMES = {6: "Shahrivar", 7: "Mehr"}


def referral(event: RequestSubmitted | LetterRegistered) -> RequestReferred:
    group = CATALOGUE[event.category].group
    khaneh = event.province == "IR-30" and group in ("industrial_units", "trade", "general")
    khaneh = khaneh and event.occurred_at >= DELEGATION
    return RequestReferred(
        event_id=derived_id("referred", event.event_id),
        request_id=event.request_id,
        occurred_at=event.occurred_at + timedelta(milliseconds=1),
        recorded_at=event.occurred_at + timedelta(milliseconds=1),
        source="samt124-router",
        province=event.province,
        body_id=f"khaneh-samt:{event.province}" if khaneh else f"samt-org:{event.province}",
        body_kind="KHANEH_SAMT" if khaneh else "SAMT_ORGANIZATION",
        rule_id="alborz-mou-industry" if khaneh else "default",
        rules_version="test",
    )


def breach(request_id: str, clock: str, cycle: int, due: datetime, province: str) -> SlaBreached:
    return SlaBreached(
        event_id=derived_id("breach", request_id, clock, cycle),
        request_id=request_id,
        occurred_at=due,
        recorded_at=due,
        source="samt124-sla",
        clock=clock,  # type: ignore[arg-type]
        cycle=cycle,
        due_at=due,
        body_id=f"samt-org:{province}",
        province=province,
        policy_id="test",
        policy_version="1",
    )


def closure(province: str, first: date, last: date) -> OfficeClosureAnnounced:
    announced = datetime.combine(first - timedelta(days=1), time(19), TEHRAN).astimezone(UTC)
    return OfficeClosureAnnounced(
        event_id=derived_id("closure", province, first),
        request_id=f"closure:{province}:{first.isoformat()}",
        occurred_at=announced,
        recorded_at=announced,
        source="governorate-announcements",
        province=province,
        first_day=first,
        last_day=last,
        reason="air pollution",
    )


def dataset(count: int = 4_000) -> list[Event]:
    """Simulated events plus referrals, breaches and closures (not necessarily in time order).

    A resolution slower than the target breaches the resolution clock of its cycle (a cycle
    starts at submission, at each reopening and at each transfer into or out of SAMT's remit);
    so does a request still open at the end of the data once its due time has passed.
    """
    events: list[Event] = [closure(*c) for c in CLOSURES]
    submitted: dict[str, RequestSubmitted | LetterRegistered] = {}
    responded: set[str] = set()
    cycle: dict[str, tuple[int, datetime, bool]] = {}  # request -> (cycle, started, resolved)
    outside: dict[str, bool] = {}  # request -> held by another ministry
    last = START
    for event in simulate(11, count, START, requests_per_day=150):
        events.append(event)
        last = max(last, event.occurred_at)
        if isinstance(event, RequestSubmitted | LetterRegistered):
            submitted[event.request_id] = event
            events.append(referral(event))
            cycle[event.request_id] = (1, event.occurred_at, False)
        intake = submitted.get(event.request_id)
        if intake is None:
            continue
        number, started, _ = cycle[event.request_id]
        if isinstance(event, RequestResponded) and event.request_id not in responded:
            responded.add(event.request_id)
            if event.occurred_at - intake.occurred_at > RESPONSE_TARGET:
                due = intake.occurred_at + RESPONSE_TARGET
                events.append(breach(event.request_id, "FIRST_RESPONSE", 1, due, intake.province))
        if isinstance(event, RequestReopened):
            cycle[event.request_id] = (number + 1, event.occurred_at, False)
        if isinstance(event, RequestTransferred):
            out = event.to_body_kind == "OTHER_MINISTRY"
            if out != outside.get(event.request_id, False):
                outside[event.request_id] = out
                done = cycle[event.request_id][2]
                cycle[event.request_id] = (number + 1, event.occurred_at, done)
        if isinstance(event, RequestResolved | RequestClosed) and not cycle[event.request_id][2]:
            cycle[event.request_id] = (number, started, True)
            if event.occurred_at - started > RESOLUTION_TARGET:
                due = started + RESOLUTION_TARGET
                events.append(breach(event.request_id, "RESOLUTION", number, due, intake.province))
    for request_id, intake in submitted.items():  # still waiting for a first response
        if request_id not in responded and intake.occurred_at + RESPONSE_TARGET < last:
            due = intake.occurred_at + RESPONSE_TARGET
            events.append(breach(request_id, "FIRST_RESPONSE", 1, due, intake.province))
    for request_id, (number, started, done) in cycle.items():
        if not done and started + RESOLUTION_TARGET < last:
            province = submitted[request_id].province
            due = started + RESOLUTION_TARGET
            events.append(breach(request_id, "RESOLUTION", number, due, province))
    return events


@dataclass
class Request:
    submitted_ms: int
    province: str
    category: str
    channel: str
    submitted_province: str = ""
    body_id: str = ""
    body_kind: str = ""
    last_referral_ms: int = -1
    holders: list[tuple[int, str]] = field(default_factory=list)
    transfers: int = 0
    reopens: int = 0
    crossings: int = 0  # transfers into or out of SAMT's remit
    to_khaneh: bool = False
    first_response_ms: int | None = None
    resolved_ms: int | None = None
    status: tuple[int, str] = (0, "")
    breaches: Counter[str] = field(default_factory=Counter)
    resolution_breach_cycles: set[int] = field(default_factory=set)

    @property
    def submitted_s(self) -> int:
        return self.submitted_ms // 1000


def fold(events: list[Event]) -> dict[str, Request]:
    """The requests view, recomputed in Python from the raw events."""
    requests: dict[str, Request] = {}
    for event in sorted(events, key=lambda e: e.occurred_at):
        ms = int(event.occurred_at.timestamp() * 1000)
        if isinstance(event, RequestSubmitted | LetterRegistered):
            channel = event.channel if isinstance(event, RequestSubmitted) else "SECRETARIAT"
            requests[event.request_id] = Request(
                ms, event.province, event.category, channel, event.province
            )
        request = requests.get(event.request_id)
        if request is None:
            continue
        if isinstance(event, RequestReferred | RequestTransferred):
            moved = (
                (event.province, event.body_id, event.body_kind)
                if isinstance(event, RequestReferred)
                else (event.to_province, event.to_body_id, event.to_body_kind)
            )
            request.holders.append((ms, moved[0]))
            if (moved[2] == "OTHER_MINISTRY") != (request.body_kind == "OTHER_MINISTRY"):
                request.crossings += bool(request.body_kind)  # not the first referral
            request.transfers += isinstance(event, RequestTransferred)
            if isinstance(event, RequestReferred) and event.body_kind == "KHANEH_SAMT":
                request.to_khaneh = event.province == "IR-30"
            if ms >= request.last_referral_ms:
                request.last_referral_ms = ms
                request.province, request.body_id, request.body_kind = moved
        if isinstance(event, RequestResponded) and request.first_response_ms is None:
            request.first_response_ms = ms
        if isinstance(event, RequestResolved):
            request.resolved_ms = ms
        if isinstance(event, RequestReopened):
            request.reopens += 1
        kinds = (
            RequestSubmitted,
            LetterRegistered,
            RequestResolved,
            RequestClosed,
            RequestReopened,
        )
        if isinstance(event, kinds) and ms >= request.status[0]:
            request.status = (ms, type(event).__name__)
        if isinstance(event, SlaBreached):
            request.breaches[event.clock] += 1
            if event.clock == "RESOLUTION":
                request.resolution_breach_cycles.add(event.cycle)
    return requests


def calendar(events: list[Event], *, with_closures: bool = True) -> Calendar:
    found = Calendar(load_config())
    for event in events:
        if with_closures and isinstance(event, OfficeClosureAnnounced):
            found = found.with_closure(Closure(event.province, event.first_day, event.last_day))
    return found


def working_us(cal: Calendar, request: Request, at_ms: int) -> int:
    """Working time from submission to ``at_ms`` where the request was held at ``at_ms``."""
    held = sorted(h for h in request.holders if h[0] <= at_ms)
    province = held[-1][1] if held else request.submitted_province
    return cal.working_us_between(province, request.submitted_ms * 1000, at_ms * 1000)


def nearest_rank_hours(values: list[int], level: float) -> float | None:
    """The ceil(level * n)-th smallest (1-based) of microseconds, in hours to 2 decimals."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(level * len(ordered) - 1e-9))
    return round(ordered[rank - 1] / 3_600_000_000, 2)


def expected_durations(
    cal: Calendar, requests: list[Request]
) -> tuple[int, float | None, float | None, int, float | None, float | None]:
    response = [working_us(cal, r, r.first_response_ms) for r in requests if r.first_response_ms]
    resolution = [working_us(cal, r, r.resolved_ms) for r in requests if r.resolved_ms]
    return (
        len(response),
        nearest_rank_hours(response, 0.5),
        nearest_rank_hours(response, 0.9),
        len(resolution),
        nearest_rank_hours(resolution, 0.5),
        nearest_rank_hours(resolution, 0.9),
    )


def jalali_month_label(ms: int) -> str:
    day = jalali(datetime.fromtimestamp(ms / 1000, UTC))
    return f"{day.year}-{day.month:02d} ({JALALI_MONTH_NAMES[day.month]})"


@pytest.fixture(scope="module")
def events() -> list[Event]:
    return dataset()


@pytest.fixture(params=["server", "chdb"])
def engine(request: pytest.FixtureRequest, events: list[Event]) -> Iterator[Engine]:
    url = request.getfixturevalue("server_url" if request.param == "server" else "chdb_url")
    target = parse_clickhouse_url(url, default_database="reports")
    with opened(target) as engine:
        migrate(engine)
        messages = [
            Message(Position(TOPICS.province("IR-30"), i % 3, i), encode(event))
            for i, event in enumerate(events)
        ]
        for start in range(0, len(messages), 1_000):
            batch = build_batch(messages[start : start + 1_000], TOPICS, AS_OF, b"key")
            store(engine, batch)
            store(engine, batch)  # a retried identical batch
        yield engine


def table(engine: Engine, name: str, **params: object) -> list[dict[str, object]]:
    columns, rows = run(engine, name, ReportParams(as_of=AS_OF, **params))  # type: ignore[arg-type]
    return [dict(zip(columns, row, strict=True)) for row in rows]


def test_volume(engine: Engine, events: list[Event]) -> None:
    expected = Counter((r.category, r.channel) for r in fold(events).values())
    got = {(row["category"], row["channel"]): row["requests"] for row in table(engine, "volume")}
    assert got == dict(expected)
    assert sum(expected.values()) > 500


def test_volume_filters_by_province(engine: Engine, events: list[Event]) -> None:
    expected = sum(1 for r in fold(events).values() if r.province == "IR-30")
    got = table(engine, "volume", provinces=("IR-30",))
    assert sum(int(row["requests"]) for row in got) == expected > 0  # type: ignore[call-overload]


def test_durations_are_working_hours(engine: Engine, events: list[Event]) -> None:
    cal = calendar(events)
    by_province: dict[str, list[Request]] = defaultdict(list)
    for request in fold(events).values():
        by_province[request.province].append(request)
    got = {row["province"]: row for row in table(engine, "durations")}
    assert set(got) == set(by_province)
    for province, requests in by_province.items():
        row = got[province]
        figures = tuple(
            row[name]
            for name in (
                "responded_requests",
                "response_p50_hours",
                "response_p90_hours",
                "resolved_requests",
                "resolution_p50_hours",
                "resolution_p90_hours",
            )
        )
        assert figures == expected_durations(cal, requests), province
    # The announced closures count: without them Alborz's figures would differ.
    alborz = by_province["IR-30"]
    no_closures = calendar(events, with_closures=False)
    assert expected_durations(no_closures, alborz) != expected_durations(cal, alborz)


@pytest.mark.parametrize("by", ["body", "category"])
def test_durations_by_body_and_category(engine: Engine, events: list[Event], by: str) -> None:
    cal = calendar(events)
    groups: dict[str, list[Request]] = defaultdict(list)
    for request in fold(events).values():
        groups[request.body_id if by == "body" else request.category].append(request)
    got = {
        row[by]: (
            row["responded_requests"],
            row["response_p50_hours"],
            row["response_p90_hours"],
            row["resolved_requests"],
            row["resolution_p50_hours"],
            row["resolution_p90_hours"],
        )
        for row in table(engine, "durations", by=by)
    }
    assert got == {key: expected_durations(cal, group) for key, group in groups.items()}


@pytest.mark.parametrize("calendar_kind", ["jalali", "gregorian"])
def test_durations_by_month(engine: Engine, events: list[Event], calendar_kind: str) -> None:
    cal = calendar(events)
    months: dict[str, list[Request]] = defaultdict(list)
    for request in fold(events).values():
        if calendar_kind == "jalali":
            label = jalali_month_label(request.submitted_ms)
        else:
            submitted = datetime.fromtimestamp(request.submitted_ms / 1000, UTC)
            label = submitted.astimezone(TEHRAN).strftime("%Y-%m")
        months[label].append(request)
    rows = table(engine, "durations", by="month", calendar=calendar_kind)
    got = {row["month"]: row["resolution_p90_hours"] for row in rows}
    assert got == {label: expected_durations(cal, group)[5] for label, group in months.items()}
    expected_labels = (
        ["1403-06 (Shahrivar)", "1403-07 (Mehr)"] if calendar_kind == "jalali" else ["2024-09"]
    )
    assert [row["month"] for row in rows] == expected_labels


def test_month_labels_can_show_the_gregorian_dates(engine: Engine) -> None:
    rows = table(engine, "durations", by="month", with_gregorian=True)
    assert [row["month"] for row in rows] == [
        "1403-06 (Shahrivar) [2024-08-22..2024-09-21]",
        "1403-07 (Mehr) [2024-09-22..2024-10-21]",
    ]


def test_rereferral(engine: Engine, events: list[Event]) -> None:
    requests = fold(events).values()
    ended = Counter((r.body_kind, r.province) for r in requests if r.transfers)
    got = {
        (row["ended_at_kind"], row["ended_in_province"]): row["transferred"]
        for row in table(engine, "rereferral")
    }
    assert got == dict(ended)
    assert sum(ended.values()) > 0


@pytest.mark.parametrize("calendar_kind", ["jalali", "gregorian"])
def test_alborz_before_and_after_the_delegation(
    engine: Engine, events: list[Event], calendar_kind: str
) -> None:
    cal = calendar(events)
    requests = fold(events).values()
    first_ms = min(r.submitted_ms for r in requests if r.to_khaneh)
    groups: dict[tuple[str, str], list[Request]] = defaultdict(list)
    for r in requests:
        if r.province == "IR-30":
            period = "after" if r.submitted_ms >= first_ms else "before"
            groups[(period, r.body_kind)].append(r)
    expected = {
        key: (len(group), *expected_durations(cal, group)[3:]) for key, group in groups.items()
    }
    rows = table(engine, "alborz", calendar=calendar_kind)
    got = {
        (row["period"], row["body_kind"]): (
            row["requests"],
            row["resolved_requests"],
            row["resolution_p50_hours"],
            row["resolution_p90_hours"],
        )
        for row in rows
    }
    assert got == expected
    assert ("after", "KHANEH_SAMT") in got
    local = datetime.fromtimestamp(first_ms / 1000, UTC).astimezone(TEHRAN)
    if calendar_kind == "jalali":
        day = jalali(local)
        label = f"{day.year}-{day.month:02d}-{day.day:02d} {local:%H:%M}"
    else:
        label = f"{local:%Y-%m-%d %H:%M}"
    assert {row["delegation_from"] for row in rows} == {label}
