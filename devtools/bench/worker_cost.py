"""Where a worker's time goes, accounted: the worker alone on a preloaded intake topic.

The intake holds the events before the worker starts, so neither the publisher nor the sink
competes for the two cores. Measured: events/s from the first output to the last referral, the
CPU seconds the worker(s) and the broker spent meanwhile (``/proc/<pid>/stat``), how many Kafka
messages each intake event caused (from the topics' end offsets), and what samt124's own decision
code costs per event with no Kafka at all (decode, validate, fold, encode, state to JSON).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from devtools.bench import harness, workload
from devtools.bench.results import Section
from devtools.bench.throughput import province_topics, publish
from samt124.contract import wire
from samt124.domain.events import Event
from samt124.kafka.reader import count_records
from samt124.kafka.topics import Topics, partition_of
from samt124.settings import Settings
from streams.app import changelog_topic

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def decision_cost(events: tuple[Event, ...], settings: Settings) -> float:
    """Microseconds of CPU per intake event for :class:`streams.pipeline.Pipeline` alone, as the
    worker runs it: the partition comes with the message (Kafka says where it read it), the
    state is stored as the bytes of its JSON, and the next due instant is the step's."""
    from samt124.domain.lifecycle import RequestState
    from streams.pipeline import Pipeline, Where

    partitions = Pipeline.load(settings).partitions
    messages = [
        (wire.key(e), wire.encode(e), wire.headers(e), partition_of(wire.key(e), partitions))
        for e in events
    ]
    pipeline = Pipeline.load(settings)
    table: dict[str, bytes] = {}
    wall = datetime.now(UTC)
    started = time.process_time()
    for offset, (key, value, headers, partition) in enumerate(messages):
        request_id = key.decode()
        raw = table.get(request_id)
        state = RequestState.from_bytes(raw) if raw else None
        where = Where("intake", partition, offset)
        step = pipeline.on_intake(state, key, value, headers, where, wall)
        if step.state is not None and not step.duplicate:
            table[request_id] = step.state.to_bytes()
    return (time.process_time() - started) / len(events) * 1e6


def measure(base: Settings, count: int, work: Path, broker_pid: int | None) -> Section:
    section = Section(
        "worker",
        "The worker alone: throughput, CPU and messages per intake event",
        f"{count:,} simulated events are published to an empty intake topic first; then"
        " `samt124 worker` starts (one, and in a second namespace two on the same topics) and"
        " the clock runs from its first output on a province topic until the province topics"
        " hold every event and referral. CPU seconds are read from `/proc/<pid>/stat` of the"
        " worker(s) and the broker over the same span. Messages per intake event are the end"
        " offsets of the topics the worker writes (province, SLA, its changelog); it reads the"
        " intake only. *Decision code alone* runs `Pipeline.on_intake` with the state kept as"
        " JSON in a dict, in this process, over the same events: no Kafka, no Faust.",
    )
    events = workload.events(count)
    target = count + workload.openings(events)
    single = _run(base, "solo", events, target, 1, work, broker_pid)
    rate = section.add("one worker", single.rate, "events/s")
    section.add("worker CPU per event", single.worker_cpu / count * 1e6, "µs")
    if single.broker_cpu is not None:
        section.add("broker CPU per event", single.broker_cpu / count * 1e6, "µs")
    section.add("worker CPU busy", single.worker_cpu / single.seconds * 100, "%", "of one core")
    produced, sla, changelog = _messages(single.settings, count)
    section.add(
        "messages produced per intake event", produced, "messages", "province, SLA, changelog"
    )
    section.add("SLA facts per intake event", sla, "messages")
    section.add("changelog records per intake event", changelog, "messages", "request states")
    decisions = section.add("decision code alone", decision_cost(events, base), "µs per event")
    if decisions:
        section.add(
            "decision code share of the worker's CPU",
            decisions / (single.worker_cpu / count * 1e6) * 100,
            "%",
        )
    double = _run(base, "duo", events, target, 2, work, broker_pid)
    two = section.add("two workers", double.rate, "events/s", "same machine, 2 cores")
    section.ratio("two workers / one", two, rate)
    return section


@dataclass(frozen=True)
class Run:
    settings: Settings
    rate: float  # intake events per second
    seconds: float
    worker_cpu: float  # seconds, all workers, from the first output to the last
    broker_cpu: float | None


def _run(
    base: Settings,
    prefix: str,
    events: tuple[Event, ...],
    target: int,
    workers: int,
    work: Path,
    broker_pid: int | None,
) -> Run:
    settings = harness.namespace(base, prefix)
    harness.topics_ready(settings)
    publish(settings, events)
    provinces = province_topics(settings)
    children = [
        harness.start(
            settings.model_copy(update={"home": work / f"{prefix}-{n}"}),
            "worker",
            log=work / f"{prefix}-worker-{n}.log",
        )
        for n in range(workers)
    ]

    def cpu() -> tuple[float, float]:
        broker = cpu_seconds(broker_pid) if broker_pid else 0.0
        return sum(cpu_seconds(child.pid) for child in children), broker

    try:
        harness.wait_until(
            lambda: count_records(settings, provinces) > 0, 180, "a first output", every=0.05
        )
        first, (worker_before, broker_before) = time.monotonic(), cpu()
        harness.wait_until(
            lambda: count_records(settings, provinces) >= target, 1800, "every event routed"
        )
        seconds = time.monotonic() - first
        worker_after, broker_after = cpu()
    finally:
        for child in children:
            child.stop()
    return Run(
        settings,
        len(events) / seconds,
        seconds,
        worker_after - worker_before,
        broker_after - broker_before if broker_pid else None,
    )


def _messages(settings: Settings, count: int) -> tuple[float, float, float]:
    """Messages the worker produced per intake event: all, SLA facts, changelog records."""
    topics = Topics(settings.topic_namespace)
    provinces = count_records(settings, province_topics(settings))
    sla = count_records(settings, [topics.sla])
    states = count_records(settings, [changelog_topic(settings)])
    return (provinces + sla + states) / count, sla / count, states / count
