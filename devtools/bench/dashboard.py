"""The dashboard's refresh cost: statements and milliseconds per refresh over stored events.

The events are stored straight into ClickHouse with the sink's own mapping (``build_batch``,
``store``), not through Kafka and the worker, so that a million of them load in minutes: the
simulator's lifecycles, the ``RequestReferred`` the router derives for each new request (to the
body :func:`samt124.domain.routing.referral_bodies` names), and the ``SlaBreached`` facts the
SLA clocks derive for a request not answered within 30 hours (first response) or not resolved
within 60 hours (resolution) of its submission, clock time. A refresh is then read as the
running dashboard reads it (:meth:`dashboard.reading.Snapshots.read`, Kafka left out).
"""

from __future__ import annotations

import heapq
import itertools
import statistics
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from devtools.bench import harness
from devtools.bench.results import Section
from samt124.domain.events import (
    Event,
    LetterRegistered,
    RequestClosed,
    RequestReferred,
    RequestResolved,
    RequestResponded,
    RequestSubmitted,
    SlaBreached,
    derived_id,
)
from samt124.settings import Settings

SEED = 124
RESPONSE = timedelta(hours=30)
RESOLUTION = timedelta(hours=60)
CHUNK = 20_000
REFRESHES = 4


@dataclass
class _Open:
    province: str
    body_id: str
    responded: bool = False
    done: bool = False


def _kind(body_id: str) -> str:
    prefix = body_id.partition(":")[0]
    return {"khaneh-samt": "KHANEH_SAMT", "ministry": "OTHER_MINISTRY"}.get(
        prefix, "SAMT_ORGANIZATION"
    )


def workload(count: int, start: datetime) -> Iterator[Event]:
    """``count`` simulated events and the referrals and breaches derived from them (more than
    ``count`` events in all: take as many as wanted)."""
    from producers.simulator import simulate
    from samt124.domain.routing import referral_bodies

    body_for = referral_bodies()
    requests: dict[str, _Open] = {}
    due: list[tuple[datetime, str, str]] = []  # (due, clock, request id)

    def fall_due(until: datetime) -> Iterator[Event]:
        while due and due[0][0] <= until:
            at, clock, request_id = heapq.heappop(due)
            request = requests[request_id]
            late = not request.done and (clock == "RESOLUTION" or not request.responded)
            if late:
                yield SlaBreached(
                    event_id=derived_id("breach", request_id, clock, 1),
                    request_id=request_id,
                    occurred_at=at,
                    recorded_at=at,
                    source="samt124-sla",
                    clock=clock,  # type: ignore[arg-type]
                    cycle=1,
                    due_at=at,
                    body_id=request.body_id,
                    province=request.province,
                    policy_id="bench",
                    policy_version="1",
                )

    for event in simulate(SEED, count, start, body_for=body_for):
        yield from fall_due(event.occurred_at)
        yield event
        if isinstance(event, RequestSubmitted | LetterRegistered):
            body = body_for(event.province, event.category, event.occurred_at)
            requests[event.request_id] = _Open(event.province, body)
            at = event.occurred_at + timedelta(milliseconds=1)
            yield RequestReferred(
                event_id=derived_id("referred", event.event_id),
                request_id=event.request_id,
                occurred_at=at,
                recorded_at=at,
                source="samt124-router",
                province=event.province,
                body_id=body,
                body_kind=_kind(body),  # type: ignore[arg-type]
                rule_id="bench",
                rules_version="bench",
            )
            heapq.heappush(due, (event.occurred_at + RESPONSE, "FIRST_RESPONSE", event.request_id))
            heapq.heappush(due, (event.occurred_at + RESOLUTION, "RESOLUTION", event.request_id))
        elif (request := requests.get(event.request_id)) is not None:
            if isinstance(event, RequestResponded):
                request.responded = True
            elif isinstance(event, RequestResolved | RequestClosed):
                request.done = True


def load(settings: Settings, events: Iterable[Event]) -> int:
    """Store the events as the sink would; how many were stored."""
    from consumers.clickhouse.engine import opened
    from consumers.clickhouse.migrations import migrate
    from consumers.sink.loader import Message, build_batch, store
    from consumers.sink.rows import Position
    from samt124.contract.wire import encode
    from samt124.kafka.topics import Topics

    topics = Topics(settings.topic_namespace)
    topic = topics.province("IR-23")
    stored = 0
    with opened(settings.clickhouse) as engine:
        migrate(engine)
        chunk: list[Message] = []
        for event in events:
            chunk.append(Message(Position(topic, 0, stored + len(chunk)), encode(event)))
            if len(chunk) == CHUNK:
                store(engine, build_batch(chunk, topics, datetime.now(UTC), b"bench"))
                stored += len(chunk)
                chunk = []
        if chunk:
            store(engine, build_batch(chunk, topics, datetime.now(UTC), b"bench"))
            stored += len(chunk)
    return stored


def measure_dashboard(base: Settings, server_url: str | None, count: int, work: Path) -> Section:
    from dashboard.reading import Snapshots

    section = Section(
        "dashboard",
        "Dashboard refresh cost (statements and ms per refresh)",
        f"{count:,} events (simulated lifecycles, plus the referrals and SLA breaches derived"
        " from them: see `devtools/bench/dashboard.py`) are stored in the ClickHouse server with"
        f" the sink's mapping; then {REFRESHES} refreshes are read one after the other as"
        " `samt124 dashboard` reads them (`Snapshots.read`: the reports backlog, heatmap since"
        " today and since the week's start, sla by province and by body in Alborz, volume, the"
        " oldest overdue listing and the dead-letter count; Kafka left out). A refresh opens one"
        " session; the figures are its statements and its wall time in ClickHouse plus Python's"
        " folding, median of the refreshes after the first (the first warms the caches).",
    )
    if server_url is None:
        section.error = "no ClickHouse server"
        return section
    settings = harness.namespace(
        base, "dash", clickhouse_url=server_url.rsplit("/", 1)[0] + "/bench_dashboard"
    )
    started = time.monotonic()
    # the data ends about now: the simulator's ~2,000 requests a day make ~11,000 events a day
    # with the derived referrals and breaches
    events = workload(count, datetime.now(UTC) - timedelta(days=count / 11_000))
    stored = load(settings, itertools.islice(events, count))
    section.add("events stored", stored, "events", f"loaded in {time.monotonic() - started:.0f} s")
    snapshots = Snapshots(settings, every=0.0, kafka=False)
    costs: list[tuple[int, float, int]] = []
    statements: dict[str, list[float]] = {}
    for number in range(REFRESHES):
        snapshot = snapshots.read(datetime.now(UTC))
        refresh = snapshot["refresh"]
        costs.append(
            (refresh["queries"], refresh["clickhouse_ms"], snapshot["backlog"]["national"]["open"])
        )
        for place, statement in enumerate(refresh["statements"] if number else ()):
            key = f"{place + 1}. {statement['for']}"
            statements.setdefault(key, []).append(statement["ms"])
    snapshots.close()
    section.notes.append(
        "Each statement of a refresh in the order sent (for which table), median ms after the"
        " first refresh: "
        + "; ".join(f"{label} {statistics.median(ms):,.0f}" for label, ms in statements.items())
    )
    steady = costs[1:] or costs
    section.add("statements per refresh", costs[-1][0], "statements")
    section.add("refresh, median", statistics.median(c[1] for c in steady), "ms")
    section.add("refresh, slowest", max(c[1] for c in steady), "ms")
    section.add("first refresh (cold)", costs[0][1], "ms")
    section.add("open requests shown", costs[-1][2], "requests")
    return section
