"""The worker's Prometheus metrics (``samt124 worker --metrics HOST:PORT``).

Counters since the process started (Prometheus' ``rate()`` and ``increase()`` ride over
restarts): intake messages taken, routed, moved, repeats dropped, dead letters by the kind of
their reason (:func:`samt124.contract.dead_letters.reason_kind`), SLA facts recorded by kind
(counted when the worker marks them emitted in the request's state, so once each within a
process); histograms of the batches of the ``route`` agent and of the SLA timer (messages and
seconds); and gauges of this worker's partitions: open requests with a running SLA clock,
requests open past their resolution deadline and how long the oldest has been (clock seconds
since its deadline).

The overdue requests are followed from the breaches as they are recorded, and dropped when the
request is resolved or closed or its resolution clock starts a new cycle; after a recovery they
are worked out again from the stored states (the few that are overdue, with the pure SLA code).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from samt124.contract.dead_letters import FAILURE, reason_kind
from samt124.domain.calendar import Calendar
from samt124.domain.events import Event, SlaBreached, event_type
from samt124.domain.lifecycle import RequestState, due_sla_facts
from samt124.domain.sla import Policies

DONE = frozenset({"RESOLVED", "CLOSED"})
BREACH_MARK = "100"
BATCH_SIZES = (1, 5, 10, 25, 50, 100, 250, 500)
BATCH_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Overdue:
    """Open requests past their resolution deadline: request id -> (cycle, the deadline)."""

    def __init__(self) -> None:
        self._due: dict[str, tuple[int, datetime]] = {}

    def __len__(self) -> int:
        return len(self._due)

    def on_fact(self, fact: Event) -> None:
        if isinstance(fact, SlaBreached) and fact.clock == "RESOLUTION":
            self._due[fact.request_id] = (fact.cycle, fact.due_at)

    def on_state(self, state: RequestState) -> None:
        held = self._due.get(state.request_id)
        if held is None:
            return
        clock = state.clock("RESOLUTION")
        if state.status in DONE or clock is None or clock.cycle != held[0]:
            del self._due[state.request_id]

    def clear(self) -> None:
        self._due.clear()

    def recover(
        self, state: RequestState, now: datetime, calendar: Calendar, policies: Policies
    ) -> None:
        """Follow a stored request again if its current resolution cycle breached (after a
        recovery): the breach's deadline is worked out again by the pure SLA code."""
        clock = state.clock("RESOLUTION")
        if state.status in DONE or clock is None:
            return
        mark = f"RESOLUTION|{clock.cycle}|{BREACH_MARK}"
        if mark not in state.emitted:
            return
        again = replace(state, emitted=state.emitted - {mark})
        for fact in due_sla_facts(again, now, calendar, policies):
            self.on_fact(fact)

    def entries(self) -> list[tuple[str, int, datetime]]:
        """Each overdue request with its resolution cycle and that cycle's deadline."""
        return [(request_id, cycle, due) for request_id, (cycle, due) in self._due.items()]

    def load(self, entries: list[tuple[str, int, datetime]]) -> None:
        self._due.update((request_id, (cycle, due)) for request_id, cycle, due in entries)

    def oldest_seconds(self, now: datetime) -> float:
        if not self._due:
            return 0.0
        oldest = min(due for _, due in self._due.values())
        return max(0.0, (now - oldest).total_seconds())


class WorkerMetrics(Collector):
    """The worker's metrics on a registry of their own (one endpoint per worker process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.intake = Counter(
            "samt124_worker_intake_messages_total",
            "Intake messages the worker took (each once per time it was handled)",
            registry=self.registry,
        )
        self.routed = Counter(
            "samt124_worker_routed_total",
            "Intake events routed to their province (repeats and dead letters excluded)",
            registry=self.registry,
        )
        self.moved = Counter(
            "samt124_worker_moved_total",
            "Intake messages copied to their request's partition",
            registry=self.registry,
        )
        self.duplicates = Counter(
            "samt124_worker_duplicates_total",
            "Intake events dropped as repeats of events already handled",
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "samt124_worker_dead_letters_total",
            "Intake messages sent to the dead-letter topic, by kind of reason",
            ["reason_kind"],
            registry=self.registry,
        )
        self.sla_facts = Counter(
            "samt124_worker_sla_facts_total",
            "SLA facts recorded (marked emitted in the request's state), by kind",
            ["kind", "clock"],
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "samt124_worker_batch_messages",
            "Messages per batch an agent handled",
            ["agent"],
            buckets=BATCH_SIZES,
            registry=self.registry,
        )
        self.batch_duration = Histogram(
            "samt124_worker_batch_duration_seconds",
            "Time to handle a batch and deliver everything it caused",
            ["agent"],
            buckets=BATCH_SECONDS,
            registry=self.registry,
        )
        self.overdue = Overdue()
        self.open_requests: Callable[[], int] = lambda: 0  # read at each scrape
        self.last_intake = 0.0  # wall-clock time of the last intake message
        self.registry.register(self)

    def dead_letter(self, reason: str, failure: bool) -> None:
        self.dead_letters.labels(FAILURE if failure else reason_kind(reason)).inc()

    def fact(self, fact: Event) -> None:
        self.sla_facts.labels(event_type(fact), str(getattr(fact, "clock", ""))).inc()
        self.overdue.on_fact(fact)

    def batch(self, agent: str, size: int, seconds: float) -> None:
        self.batch_size.labels(agent).observe(size)
        self.batch_duration.labels(agent).observe(seconds)

    def took_intake(self) -> None:
        self.intake.inc()
        self.last_intake = time.time()

    def collect(self) -> Iterator[Metric]:
        now = datetime.now(UTC)
        yield GaugeMetricFamily(
            "samt124_worker_open_requests",
            "Open requests of this worker's partitions with a running SLA clock",
            value=self.open_requests(),
        )
        yield GaugeMetricFamily(
            "samt124_worker_overdue_requests",
            "Open requests of this worker's partitions past their resolution deadline",
            value=len(self.overdue),
        )
        yield GaugeMetricFamily(
            "samt124_worker_oldest_overdue_seconds",
            "Clock seconds since the resolution deadline of the most overdue open request",
            value=self.overdue.oldest_seconds(now),
        )
        yield GaugeMetricFamily(
            "samt124_worker_last_intake_timestamp_seconds",
            "When the worker last took an intake message (Unix time; 0: not since it started)",
            value=self.last_intake,
        )

    def describe(self) -> Iterator[Metric]:
        return iter(())
