"""The dashboard's refresh cost: statements and milliseconds per refresh over stored events.

The events are stored straight into ClickHouse with the sink's own mapping (``build_batch``,
``store``), not through Kafka, so that a million of them load in minutes; but they are what the
worker would have published: the simulator's lifecycles go through the worker's own decisions
(:class:`streams.pipeline.Pipeline`, the referral rules, the SLA policies and calendars), in
event time, and every message it would send (the province copies, referrals, the clocks'
``SlaDeadlinesSet`` facts, the SLA warnings and breaches as they fall due) is stored. A refresh
is then read as the running dashboard reads it (:meth:`dashboard.reading.Snapshots.read`, Kafka
left out).
"""

from __future__ import annotations

import heapq
import itertools
import statistics
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from devtools.bench import harness
from devtools.bench.results import Section
from samt124.settings import Settings

SEED = 124
CHUNK = 20_000
REFRESHES = 4


def workload(settings: Settings, count: int, start: datetime) -> Iterator[tuple[str, bytes]]:
    """The messages (topic, value) the worker publishes for ``count`` simulated intake events
    from ``start``: more than ``count`` in all, take as many as wanted."""
    from producers.simulator import simulate
    from samt124.contract import wire
    from samt124.domain.lifecycle import RequestState
    from samt124.domain.routing import referral_bodies
    from samt124.kafka.topics import Topics, partition_of
    from streams.pipeline import Pipeline, Where

    pipeline = Pipeline.load(settings)
    intake = Topics(settings.topic_namespace).intake
    states: dict[str, RequestState] = {}
    scheduled: dict[str, datetime] = {}  # request id -> its next due (older heap entries stale)
    queue: list[tuple[datetime, str]] = []

    def schedule(request_id: str, due: datetime | None) -> None:
        if due is None:
            scheduled.pop(request_id, None)
            return
        scheduled[request_id] = due
        heapq.heappush(queue, (due, request_id))

    def fall_due(until: datetime) -> Iterator[tuple[str, bytes]]:
        while queue and queue[0][0] <= until:
            at, request_id = heapq.heappop(queue)
            if scheduled.get(request_id) != at:
                continue
            step = pipeline.due(states[request_id], at, at)
            if step.state is not None:
                states[request_id] = step.state
            yield from ((out.topic, out.value) for out in step.outgoing)
            schedule(request_id, step.due if step.due is not None and step.due > at else None)

    # actors as the referral rules name the holders: the worker refuses another body's action
    for offset, event in enumerate(simulate(SEED, count, start, body_for=referral_bodies())):
        yield from fall_due(event.occurred_at)
        key = wire.key(event)
        where = Where(intake, partition_of(key, pipeline.partitions), offset)
        state = states.get(event.request_id)
        step = pipeline.on_intake(
            state, key, wire.encode(event), wire.headers(event), where, event.occurred_at
        )
        if step.state is not None and not step.duplicate:
            states[event.request_id] = step.state
            schedule(event.request_id, step.due)
        yield from ((out.topic, out.value) for out in step.outgoing)


def load(settings: Settings, messages: Iterable[tuple[str, bytes]]) -> int:
    """Store the messages as the sink would; how many were stored."""
    from consumers.clickhouse.engine import opened
    from consumers.clickhouse.migrations import migrate
    from consumers.sink.loader import Message, build_batch, store
    from consumers.sink.rows import Position
    from samt124.kafka.topics import Topics

    topics = Topics(settings.topic_namespace)
    stored = 0
    with opened(settings.clickhouse) as engine:
        migrate(engine)
        chunk: list[Message] = []
        for topic, value in messages:
            chunk.append(Message(Position(topic, 0, stored + len(chunk)), value))
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
        f"{count:,} messages the worker would publish for simulated lifecycles (the province"
        " copies, referrals, the clocks' deadlines, SLA warnings and breaches, derived by the"
        " worker's own decisions in event time: see `devtools/bench/dashboard.py`) are stored in"
        f" the ClickHouse server with the sink's mapping; then {REFRESHES} refreshes are read one"
        " after the other as"
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
    # the data ends about now: the simulator's ~2,000 requests a day make ~8,000 intake events
    # a day, and the worker about two messages per intake event
    messages = workload(settings, count, datetime.now(UTC) - timedelta(days=count / 16_000))
    stored = load(settings, itertools.islice(messages, count))
    section.add(
        "messages stored", stored, "messages", f"loaded in {time.monotonic() - started:.0f} s"
    )
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
