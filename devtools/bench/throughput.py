"""Publisher throughput, end-to-end throughput (publish → queryable in ClickHouse) and routing
latency (publish → referral on the province topic)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from devtools.bench import harness, profile, workload
from devtools.bench.results import Section
from samt124.contract import wire
from samt124.domain.events import SLA_EVENT_TYPES, Event, LetterRegistered, RequestSubmitted
from samt124.kafka.reader import count_records, read_topics
from samt124.kafka.topics import Topics
from samt124.settings import Settings

CHUNK = 5_000
SLA_TYPES = ", ".join(f"'{name}'" for name in sorted(SLA_EVENT_TYPES))


def _chunks(items: tuple[Event, ...], size: int) -> Iterator[tuple[Event, ...]]:
    for first in range(0, len(items), size):
        yield items[first : first + size]


def publish(settings: Settings, events: tuple[Event, ...]) -> float:
    """``Publisher.publish_many`` in the chunks ``samt124 simulate`` uses; return the seconds."""
    from producers.publisher import Publisher

    with Publisher(settings) as publisher:
        started = time.monotonic()
        for chunk in _chunks(events, CHUNK):
            publisher.publish_many(chunk)
        return time.monotonic() - started


def province_topics(settings: Settings) -> list[str]:
    return Topics(settings.topic_namespace).provinces()


# -- 6. publisher -----------------------------------------------------------------------------


def measure_publisher(base: Settings, count: int, work: Path) -> tuple[Section, float | None]:
    section = Section(
        "publisher",
        "Publisher throughput",
        f"{count:,} simulated events (the same seed every run) published to an empty intake topic"
        " by `Publisher.publish_many` in chunks of 5,000 (validation, Avro encoding, idempotent"
        " producer, acks=all), events generated beforehand; and `samt124 simulate --count"
        f" {count} --quiet` as a child process (generation included), figures as it prints them.",
    )
    events = workload.events(count)
    settings = harness.namespace(base, "pub")
    harness.topics_ready(settings)
    seconds = publish(settings, events)
    rate = section.add("Publisher.publish_many", count / seconds, "events/s")
    simulated = harness.namespace(base, "sim")
    harness.topics_ready(simulated)
    _, out = harness.run(
        simulated, "simulate", "--count", str(count), "--quiet", log=work / "simulate.log"
    )
    found = re.search(r"published (\d+) events in ([\d.]+) s", out)
    if found:
        section.add(
            "samt124 simulate (incl. generation)",
            int(found.group(1)) / float(found.group(2)),
            "events/s",
        )
    return section, rate


# -- 1. end to end ----------------------------------------------------------------------------


@dataclass(frozen=True)
class EndToEnd:
    published_at: float
    routed_at: float | None
    queryable_at: float
    sla_rows: int


class _Watcher:
    """Polls the province topics' end offsets and ClickHouse's row counts."""

    def __init__(self, settings: Settings) -> None:
        from kafka import KafkaConsumer, TopicPartition

        from consumers.clickhouse.engine import connect

        self.engine = connect(settings.clickhouse)
        self.consumer = KafkaConsumer(**settings.kafka_client_options())
        self.partitions = [
            TopicPartition(topic, p)
            for topic in province_topics(settings)
            for p in range(settings.partitions)
        ]
        self.db = settings.clickhouse.database

    def routed(self) -> int:
        return int(sum(self.consumer.end_offsets(self.partitions).values()))

    def rows(self, table: str) -> int:
        _, rows = self.engine.query(
            f"SELECT count() FROM {self.db}.{table} WHERE event_type NOT IN ({SLA_TYPES})"
        )
        return int(rows[0][0])

    def sla_rows(self) -> int:
        _, rows = self.engine.query(f"SELECT count() FROM {self.db}.sla_events_unique")
        return int(rows[0][0])

    def close(self) -> None:
        self.consumer.close()
        self.engine.close()


def measure_end_to_end(
    base: Settings, server_url: str, count: int, work: Path, timeout: float
) -> tuple[Section, float | None]:
    section = Section(
        "e2e",
        "End-to-end throughput: publish → queryable in ClickHouse",
        f"The worker and the sink run as child processes (`samt124 worker`, `samt124 sink`) on"
        f" the benchmark's broker, the sink writing to the benchmark's ClickHouse server. After a"
        f" warm-up request has gone all the way through, {count:,} simulated events are"
        " published with `Publisher.publish_many`. *Queryable* means: `events_unique` holds every"
        " published event and the `RequestReferred` the router derives for each request it opens"
        " (the rows whose type is not an SLA fact: published + opened requests). SLA facts the"
        " worker derives along the way are stored too but not waited for; their count at that"
        " moment is given. The clock runs from the first publish to the first poll (every 0.25"
        " s) that sees them all. *Routed* is when the province topics' end offsets account for"
        " every event and referral.",
    )
    events = workload.events(count)
    opened = workload.openings(events)
    database = f"bench_{base.topic_namespace}_{int(time.time())}"
    settings = harness.namespace(
        base, "e2e", clickhouse_url=f"{server_url.rsplit('/', 1)[0]}/{database}"
    )
    harness.topics_ready(settings)
    harness.run(settings, "init", log=work / "e2e-init.log")
    worker = harness.start(settings, "worker", log=work / "e2e-worker.log")
    sink = harness.start(settings, "sink", log=work / "e2e-sink.log")
    watcher = _Watcher(settings)
    recorder: profile.Recorder | None = None
    try:
        warm = workload.warm_up()
        publish(settings, (warm,))
        harness.wait_until(lambda: watcher.rows("events_unique") >= 2, 180, "the warm-up")
        before = watcher.rows("events_unique")
        target = before + count + opened
        try:
            recorder = profile.Recorder(worker.pid, work / "worker-profile.txt")
        except FileNotFoundError as error:
            section.notes.append(f"No profile: {error}.")
        started = time.monotonic()
        published = publish(settings, events)
        routed_at = None
        deadline = started + timeout
        while time.monotonic() < deadline:
            now = time.monotonic() - started
            if routed_at is None and watcher.routed() >= target:
                routed_at = now
            if watcher.rows("events") >= target and watcher.rows("events_unique") >= target:
                queryable = now
                break
            time.sleep(0.25)
        else:
            raise harness.BenchError(
                f"only {watcher.rows('events_unique') - before} of {count + opened} rows were"
                f" queryable after {timeout:.0f} s"
            )
        summary = profile.report(recorder.stop() if recorder else None)
        recorder = None
        sla = watcher.sla_rows()
        worker_rss, sink_rss = worker.peak_rss_mib(), sink.peak_rss_mib()
    finally:
        if recorder is not None:
            recorder.stop()
        watcher.close()
        worker.stop()
        sink.stop()
    rate = section.add("publish → queryable", count / queryable, "events/s")
    section.add(
        "publish → routed (worker)",
        count / routed_at if routed_at else None,
        "events/s",
        "all events and referrals on the province topics",
    )
    section.add("publish only", count / published, "events/s", "Publisher.publish_many")
    section.add("events published", count, "events")
    section.add("requests opened (referrals derived)", opened, "requests")
    section.add("SLA facts stored by then", sla, "rows")
    section.add("seconds to queryable", queryable, "s")
    section.add("worker peak RSS", worker_rss, "MiB", "VmHWM")
    section.add("sink peak RSS", sink_rss, "MiB", "VmHWM")
    section.notes += ["### Where the worker's time goes", "", *summary]
    return section, rate


# -- 2. routing latency -----------------------------------------------------------------------


def measure_latency(base: Settings, rate: float, seconds: float, work: Path) -> Section:
    count = int(rate * seconds)
    section = Section(
        "latency",
        "Routing latency: publish → RequestReferred on the province topic",
        f"The worker alone, warmed up; {count:,} simulated events published at a steady"
        f" {rate:,.0f} events/s for {seconds:.0f} s (`Publisher.publish_many` every 50 ms)."
        " For every request opened, latency = the Kafka record timestamp of its"
        " `RequestReferred` on the province topic (set by the worker's producer) − the record"
        " timestamp of its submission on the intake topic (set by the publisher at send)."
        " The warm-up request published before them, which waits for the worker's start, is"
        " not counted.",
    )
    settings = harness.namespace(base, "lat")
    harness.topics_ready(settings)
    worker = harness.start(settings, "worker", log=work / "latency-worker.log")
    warm_up = workload.warm_up()
    try:
        publish(settings, (warm_up,))
        harness.wait_until(
            lambda: count_records(settings, province_topics(settings)) >= 2,
            180,
            "the warm-up referral",
        )
        _paced_publish(settings, workload.events(count), rate)
        time.sleep(5)
        worker_rss = worker.peak_rss_mib()
    finally:
        worker.stop()
    topics = Topics(settings.topic_namespace)
    submitted = {
        r.key: r.timestamp_ms
        for r in read_topics(settings, [topics.intake])
        if isinstance(wire.decode(r.value), RequestSubmitted | LetterRegistered)
        and r.key != wire.key(warm_up)  # waited for the worker's start
    }
    latencies = [
        float(r.timestamp_ms - submitted[r.key])
        for r in read_topics(settings, province_topics(settings))
        if r.key in submitted and type(wire.decode(r.value)).__name__ == "RequestReferred"
    ]
    if not latencies:
        section.error = "no referral matched a submission"
        return section
    section.add("p50", harness.percentile(latencies, 0.50), "ms")
    section.add("p99", harness.percentile(latencies, 0.99), "ms")
    section.add("max", max(latencies), "ms")
    section.add("referrals measured", len(latencies), "requests", f"of {len(submitted)} opened")
    section.add("worker peak RSS", worker_rss, "MiB", "VmHWM")
    return section


def _paced_publish(settings: Settings, events: tuple[Event, ...], rate: float) -> None:
    from producers.publisher import Publisher

    size = max(1, round(rate / 20))
    with Publisher(settings) as publisher:
        started = time.monotonic()
        for number, chunk in enumerate(_chunks(events, size)):
            ahead = number * size / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
            publisher.publish_many(chunk)
