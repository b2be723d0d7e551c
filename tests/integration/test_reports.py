"""Every report's figures, on both engines, against a recomputation from the raw events.

The data: simulated lifecycles, the referrals the router would add (Alborz industrial, trade and
general requests go to Khaneh Samt from a delegation date on), and SLA breaches for slow
requests. Every batch is stored twice, so the reports also prove that they count each event once.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from consumers.clickhouse.engine import Engine, opened
from consumers.clickhouse.migrations import migrate
from consumers.reports import ReportParams, run
from consumers.rows import TEHRAN, Position, jalali
from consumers.sink import Message, build_batch, store
from producers.simulator import simulate
from samt124.catalogue import CATALOGUE
from samt124.events import (
    Event,
    LetterRegistered,
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
from samt124.settings import parse_clickhouse_url
from samt124.topics import Topics
from samt124.wire import encode

pytestmark = pytest.mark.integration

START = datetime(2024, 9, 1, tzinfo=UTC)
DELEGATION = START + timedelta(hours=9)
AS_OF = datetime(2024, 9, 20, tzinfo=UTC)
TOPICS = Topics("rep")
RESPONSE_TARGET = timedelta(hours=4)
RESOLUTION_TARGET = timedelta(hours=20)


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


def breach(event: Event, clock: str, due: datetime, province: str) -> SlaBreached:
    return SlaBreached(
        event_id=derived_id("breach", event.request_id, clock),
        request_id=event.request_id,
        occurred_at=due,
        recorded_at=due,
        source="samt124-sla",
        clock=clock,  # type: ignore[arg-type]
        cycle=1,
        due_at=due,
        body_id=f"samt-org:{province}",
        province=province,
        policy_id="test",
        policy_version="1",
    )


def dataset(count: int = 4_000) -> list[Event]:
    """Simulated events plus referrals and breaches (not necessarily in time order)."""
    events: list[Event] = []
    submitted: dict[str, RequestSubmitted | LetterRegistered] = {}
    responded: set[str] = set()
    resolved: set[str] = set()
    for event in simulate(11, count, START, requests_per_day=1_500):
        events.append(event)
        if isinstance(event, RequestSubmitted | LetterRegistered):
            submitted[event.request_id] = event
            events.append(referral(event))
        intake = submitted.get(event.request_id)
        if intake is None:
            continue
        if isinstance(event, RequestResponded) and event.request_id not in responded:
            responded.add(event.request_id)
            if event.occurred_at - intake.occurred_at > RESPONSE_TARGET:
                due = intake.occurred_at + RESPONSE_TARGET
                events.append(breach(event, "FIRST_RESPONSE", due, intake.province))
        if isinstance(event, RequestResolved) and event.request_id not in resolved:
            resolved.add(event.request_id)
            if event.occurred_at - intake.occurred_at > RESOLUTION_TARGET:
                due = intake.occurred_at + RESOLUTION_TARGET
                events.append(breach(event, "RESOLUTION", due, intake.province))
    return events


@dataclass
class Request:
    submitted_s: int
    province: str
    category: str
    channel: str
    body_id: str = ""
    body_kind: str = ""
    last_referral_ms: int = -1
    transfers: int = 0
    first_response_s: int | None = None
    resolved_s: int | None = None
    status: tuple[int, str] = (0, "")
    breaches: Counter[str] | None = None


def fold(events: list[Event]) -> dict[str, Request]:
    """The requests view, recomputed in Python from the raw events."""
    requests: dict[str, Request] = {}
    for event in sorted(events, key=lambda e: e.occurred_at):
        ms = int(event.occurred_at.timestamp() * 1000)
        s = int(event.occurred_at.timestamp())
        if isinstance(event, RequestSubmitted | LetterRegistered):
            channel = event.channel if isinstance(event, RequestSubmitted) else "SECRETARIAT"
            requests[event.request_id] = Request(s, event.province, event.category, channel)
        request = requests.get(event.request_id)
        if request is None:
            continue
        if (
            isinstance(event, RequestReferred | RequestTransferred)
            and ms >= request.last_referral_ms
        ):
            request.last_referral_ms = ms
            if isinstance(event, RequestReferred):
                request.province, request.body_id = event.province, event.body_id
                request.body_kind = event.body_kind
            else:
                request.province, request.body_id = event.to_province, event.to_body_id
                request.body_kind = event.to_body_kind
                request.transfers += 1
        if isinstance(event, RequestResponded) and request.first_response_s is None:
            request.first_response_s = s
        if isinstance(event, RequestResolved):
            request.resolved_s = s
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
            request.breaches = (request.breaches or Counter()) + Counter([event.clock])
    return requests


def is_open(request: Request) -> bool:
    return request.status[1] not in ("RequestResolved", "RequestClosed")


def quantile(values: list[float], level: float) -> float:
    """ClickHouse's quantileExact: the element at floor(level * n) of the sorted values."""
    ordered = sorted(values)
    return ordered[int(level * len(ordered))]


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


def test_sla(engine: Engine, events: list[Event]) -> None:
    requests = fold(events).values()
    expected: dict[str, tuple[int, int, int, int]] = {}
    for province in {r.province for r in requests}:
        mine = [r for r in requests if r.province == province]
        resolved = [r for r in mine if r.resolved_s is not None]
        on_time = [r for r in resolved if not (r.breaches or Counter())["RESOLUTION"]]
        breaches = sum((r.breaches or Counter())["RESOLUTION"] for r in mine)
        expected[province] = (len(mine), len(resolved), len(on_time), breaches)
    got = {
        row["province"]: (
            row["requests"],
            row["resolved_requests"],
            row["resolved_on_time"],
            row["resolution_breaches"],
        )
        for row in table(engine, "sla")
    }
    assert got == expected
    assert sum(value[3] for value in expected.values()) > 0


def test_durations(engine: Engine, events: list[Event]) -> None:
    by_province: dict[str, list[Request]] = defaultdict(list)
    for request in fold(events).values():
        by_province[request.province].append(request)
    got = {row["province"]: row for row in table(engine, "durations")}
    assert set(got) == set(by_province)
    for province, requests in by_province.items():
        hours = [(r.resolved_s - r.submitted_s) / 3600 for r in requests if r.resolved_s]
        response = [
            (r.first_response_s - r.submitted_s) / 3600 for r in requests if r.first_response_s
        ]
        row = got[province]
        assert row["resolved_requests"] == len(hours)
        assert row["responded_requests"] == len(response)
        if hours:
            assert row["resolution_p50_hours"] == pytest.approx(quantile(hours, 0.5), abs=0.006)
            assert row["resolution_p90_hours"] == pytest.approx(quantile(hours, 0.9), abs=0.006)
        if response:
            assert row["response_p50_hours"] == pytest.approx(quantile(response, 0.5), abs=0.006)


def test_durations_by_jalali_month(engine: Engine, events: list[Event]) -> None:
    months: Counter[str] = Counter()
    for request in fold(events).values():
        day = jalali(datetime.fromtimestamp(request.submitted_s, UTC))
        months[str(day.year * 100 + day.month)] += request.resolved_s is not None
    got = {row["month"]: row["resolved_requests"] for row in table(engine, "durations", by="month")}
    assert got == dict(months)
    assert "140306" in got  # 1403 Shahrivar


def test_backlog(engine: Engine, events: list[Event]) -> None:
    requests = fold(events)
    last_due: dict[str, datetime] = {}
    for event in sorted(events, key=lambda e: e.occurred_at):
        if isinstance(event, SlaBreached):
            last_due[event.request_id] = event.due_at
    expected: dict[tuple[str, str], tuple[int, int, float]] = {}
    for key in {(r.province, r.body_id) for r in requests.values() if is_open(r)}:
        open_ids = [i for i, r in requests.items() if is_open(r) and (r.province, r.body_id) == key]
        overdue = [
            (AS_OF - last_due[i]).total_seconds() // 1 / 3600 for i in open_ids if i in last_due
        ]
        expected[key] = (len(open_ids), len(overdue), round(max(overdue), 1) if overdue else 0.0)
    got = {
        (row["province"], row["body_id"]): (
            row["open_requests"],
            row["breached"],
            row["max_overdue_hours"],
        )
        for row in table(engine, "backlog")
    }
    assert got.keys() == expected.keys()
    for key, (count, breached, worst) in expected.items():
        assert got[key][:2] == (count, breached)
        assert got[key][2] == pytest.approx(worst, abs=0.051)


def test_rereferral(engine: Engine, events: list[Event]) -> None:
    requests = fold(events).values()
    ended = Counter((r.body_kind, r.province) for r in requests if r.transfers)
    got = {
        (row["ended_at_kind"], row["ended_in_province"]): row["transferred"]
        for row in table(engine, "rereferral")
    }
    assert got == dict(ended)
    assert sum(ended.values()) > 0


def test_alborz_before_and_after_the_delegation(engine: Engine, events: list[Event]) -> None:
    first = min(
        e.occurred_at
        for e in events
        if isinstance(e, RequestReferred) and e.body_kind == "KHANEH_SAMT"
    )
    expected = Counter(
        ("after" if r.submitted_s >= int(first.timestamp()) else "before", r.body_kind)
        for r in fold(events).values()
        if r.province == "IR-30"
    )
    got = {(row["period"], row["body_kind"]): row["requests"] for row in table(engine, "alborz")}
    assert got == dict(expected)
    assert ("after", "KHANEH_SAMT") in got


@pytest.mark.parametrize("calendar", ["jalali", "gregorian"])
def test_heatmap(engine: Engine, events: list[Event], calendar: str) -> None:
    expected: Counter[tuple[str, str]] = Counter()
    for event in events:
        if isinstance(event, SlaBreached):
            if calendar == "jalali":
                day = jalali(event.occurred_at)
                week = str(day.year * 100 + day.week)
            else:
                local = event.occurred_at.astimezone(TEHRAN).date()
                week = str(local - timedelta(days=local.weekday()))
            expected[(event.province, week)] += 1
    got = {
        (row["province"], row["week"]): row["breaches"]
        for row in table(engine, "heatmap", calendar=calendar)
    }
    assert got == dict(expected)
