"""Worker recovery and breach lateness with many open requests.

The worker's table is loaded with N open requests without routing N events: their states are
written straight to the table's changelog topic as the worker writes them (key: the JSON string
of the request id; value: ``RequestState.to_bytes()``; partition: the one the intake key gets
from kafka-python's default partitioner), built with the worker's own fold
(``decide(None, RequestSubmitted, ctx)``). Under a short always-open SLA policy, N − K requests
have deadlines hours away and K breach at known instants after the worker should have
recovered; then the worker starts and the benchmark watches its log and the SLA topic.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from devtools.bench import harness, workload
from devtools.bench.results import Section
from samt124.contract import wire
from samt124.domain.calendar import always_open
from samt124.domain.events import Event, RequestSubmitted, SlaBreached, replace
from samt124.domain.sla import single_policy
from samt124.kafka.reader import count_records, read_topics
from samt124.kafka.topics import Topics, partition_of
from samt124.settings import Settings
from streams.app import changelog_topic

FIRST_RESPONSE_HOURS = 2.0
ALWAYS_OPEN = always_open("bench-always-open")
SHORT_POLICY = single_policy(
    "bench-short", first_response_hours=FIRST_RESPONSE_HOURS, resolution_hours=10_000
)
RECOVERED = re.compile(r"recovered (\d+) requests, (\d+) with running SLA clocks, in ([\d.]+) s")


@dataclass(frozen=True)
class Preload:
    written: int
    build_seconds: float
    write_seconds: float
    due: dict[str, datetime]  # the K breaching requests and their deadlines


class _Changelog:
    def __init__(self, settings: Settings) -> None:
        from kafka import KafkaProducer

        from producers.publisher import producer_options
        from samt124.domain.lifecycle import decide
        from streams.pipeline import Pipeline

        self.settings = settings
        self.topic = changelog_topic(settings)
        self.pipeline = Pipeline.load(settings)
        self.decide = decide
        self.producer = KafkaProducer(**producer_options(settings))
        self.template = next(e for e in workload.events(200) if isinstance(e, RequestSubmitted))
        self.build_seconds = 0.0

    def state(self, request_id: str, submitted_at: datetime) -> bytes:
        event: Event = replace(
            self.template,
            event_id=f"{request_id}-submitted",
            request_id=request_id,
            occurred_at=submitted_at,
            recorded_at=submitted_at,
        )
        decision = self.decide(None, event, self.pipeline.context(submitted_at))
        assert decision.state is not None
        return decision.state.to_bytes()

    def write(self, request_id: str, submitted_at: datetime) -> None:
        started = time.perf_counter()
        value = self.state(request_id, submitted_at)
        self.build_seconds += time.perf_counter() - started
        self.producer.send(
            self.topic,
            key=json.dumps(request_id).encode(),
            value=value,
            partition=partition_of(request_id.encode(), self.settings.partitions),
        )

    def close(self) -> None:
        self.producer.flush()
        self.producer.close()


def create_changelog(settings: Settings) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(**settings.kafka_client_options())
    try:
        admin.create_topics(
            [
                NewTopic(
                    changelog_topic(settings),
                    settings.partitions,
                    settings.replication_factor or 1,
                    topic_configs={"cleanup.policy": "compact"},
                )
            ]
        )
    finally:
        admin.close()
    harness.topics_ready(settings, extra=(changelog_topic(settings),))


def preload(settings: Settings, count: int, breaching: int, lead: float, spread: float) -> Preload:
    """Write ``count`` open requests; the last ``breaching`` ones breach ``lead`` to
    ``lead + spread`` seconds after this returns (deadlines fixed just before writing them)."""
    create_changelog(settings)
    changelog = _Changelog(settings)
    hours = timedelta(hours=FIRST_RESPONSE_HOURS)
    started = time.monotonic()
    for number in range(count - breaching):
        changelog.write(f"bench-{number:07d}", datetime.now(UTC))
    anchor = datetime.now(UTC) + timedelta(seconds=lead)
    due: dict[str, datetime] = {}
    for number in range(breaching):
        request_id = f"bench-breach-{number:05d}"
        due[request_id] = anchor + timedelta(seconds=spread * number / max(1, breaching - 1))
        changelog.write(request_id, due[request_id] - hours)
    changelog.close()
    total = time.monotonic() - started
    return Preload(count, changelog.build_seconds, total - changelog.build_seconds, due)


def measure_recovery(
    base: Settings, count: int, breaching: int, work: Path, lead: float
) -> list[Section]:
    recovery = Section(
        "recovery",
        f"Worker recovery with {count:,} open requests",
        f"{count:,} open requests are written straight to the worker's changelog topic (see"
        " `devtools/bench/recovery.py`), then `samt124 worker` starts. *Ready* is the worker's"
        " `recovered N requests` log line (the table is read back and the SLA timer heap"
        " rebuilt); *first fact* is the record timestamp of the first SLA fact it publishes;"
        " both from the process's start. Then the worker is stopped (SIGTERM) and started again,"
        " and once more after a SIGKILL of a ready worker: the time to ready is what a restart"
        " reads of the changelog (all of it with the in-memory store; only what was written since"
        " with RocksDB, the default) plus the timer heap's rebuild.",
    )
    breach = Section(
        "breach",
        f"Breach lateness with {count:,} open requests",
        f"Of the {count:,} requests, {breaching} breach their FIRST_RESPONSE deadline (a"
        f" {FIRST_RESPONSE_HOURS:g}-hour always-open policy, no warnings) at instants spread over"
        f" 10 s, starting {lead:.0f} s after the preload finished; all the others are due hours"
        " later. Lateness = the `SlaBreached` record's Kafka timestamp − its `due_at`. Breaches"
        " due before the worker was ready are late by the recovery itself and are counted apart.",
    )
    calendars, policies = work / "bench-calendars.json", work / "bench-policies.json"
    calendars.write_text(json.dumps(ALWAYS_OPEN))
    policies.write_text(json.dumps(SHORT_POLICY))
    settings = harness.namespace(base, "rec", calendars=calendars, sla_policies=policies)
    loaded = preload(settings, count, breaching, lead, spread=10.0)
    recovery.add("states built (decide + to_json + JSON)", count / loaded.build_seconds, "states/s")
    recovery.add("changelog written", count / loaded.write_seconds, "records/s", "kafka-python")
    topics = Topics(settings.topic_namespace)
    worker = harness.start(settings, "worker", log=work / "recovery-worker.log")
    try:
        ready = worker.wait_for_line(RECOVERED.pattern, timeout=lead + 900)
        found = RECOVERED.search(worker.output())
        worker_rss = worker.peak_rss_mib()
        last_due = max(loaded.due.values()).timestamp()
        harness.wait_until(
            lambda: count_records(settings, [topics.sla]) >= breaching,
            max(60.0, last_due - time.time() + 120),
            "the breaches",
        )
        time.sleep(1)
        worker_rss = worker.peak_rss_mib() or worker_rss
    finally:
        worker.stop()
    logged = harness.log_times(worker.output(), "recovered ")
    ready_at = logged[0] if logged else ready
    facts = read_topics(settings, [topics.sla])
    first_fact = min(r.timestamp_ms for r in facts) / 1000 if facts else None
    recovery.add("process start → ready", ready_at - worker.started, "s")
    if found:
        recovery.add("requests recovered", int(found.group(1)), "requests")
        recovery.add("of which the timer heap rebuild", float(found.group(3)), "s")
    recovery.add(
        "process start → first fact",
        first_fact - worker.started if first_fact else None,
        "s",
        f"first deadline {min(loaded.due.values()).timestamp() - worker.started:.1f} s after start",
    )
    recovery.add("worker peak RSS", worker_rss, "MiB", "VmHWM")
    for how in ("a clean stop", "SIGKILL"):
        seconds, rss = _restart(settings, work, how)
        recovery.add(f"after {how}: start → ready", seconds, "s", settings.worker_store)
        recovery.add(f"after {how}: peak RSS", rss, "MiB", "VmHWM")
    late_after, late_before = [], 0
    for record in facts:
        event = wire.decode(record.value)
        if isinstance(event, SlaBreached) and event.request_id in loaded.due:
            due = event.due_at.timestamp()
            if due < ready_at:
                late_before += 1
            else:
                late_after.append(record.timestamp_ms / 1000 - due)
    if late_after:
        breach.add("p50", 1000 * harness.percentile(late_after, 0.5), "ms")
        breach.add("p99", 1000 * harness.percentile(late_after, 0.99), "ms")
        breach.add("max", 1000 * max(late_after), "ms")
    else:
        breach.error = "no breach fell due after the worker was ready (raise the lead)"
    breach.add("breaches due after ready", len(late_after), "requests", f"of {breaching}")
    breach.add("breaches due before ready", late_before, "requests", "late by the recovery")
    return [recovery, breach]


def _restart(settings: Settings, work: Path, how: str) -> tuple[float | None, float | None]:
    """Start the worker again on the state the last one left, after ``how`` it ended: the
    time until it is ready and its peak RSS. A SIGKILL comes to a worker that is ready."""
    if how == "SIGKILL":
        victim = harness.start(settings, "worker", log=work / "recovery-worker-victim.log")
        try:
            victim.wait_for_line(RECOVERED.pattern, timeout=900)
            time.sleep(2)  # the timer's first ticks, and their writes
        finally:
            victim.kill()
    name = "clean" if how != "SIGKILL" else "killed"
    worker = harness.start(settings, "worker", log=work / f"recovery-worker-{name}.log")
    try:
        worker.wait_for_line(RECOVERED.pattern, timeout=900)
        rss = worker.peak_rss_mib()
    finally:
        worker.stop()
    logged = harness.log_times(worker.output(), "recovered ")
    return (logged[0] - worker.started if logged else None), rss
