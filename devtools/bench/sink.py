"""Sink throughput on both engines: pre-filled province topics → ``samt124 sink --until-idle``."""

from __future__ import annotations

import re
import time
from pathlib import Path

from devtools.bench import harness, workload
from devtools.bench.baselines import fill
from devtools.bench.results import Section
from samt124.contract import wire
from samt124.domain.events import Event
from samt124.kafka.topics import Topics
from samt124.settings import Settings

IDLE = 3.0
STORED = re.compile(r"stored and committed (\d+) messages")


def _province_messages(
    settings: Settings, events: tuple[Event, ...]
) -> dict[str, list[workload.Message]]:
    """Each event on its request's province topic, as the router would have put it."""
    topics = Topics(settings.topic_namespace)
    province_of: dict[str, str] = {}
    by_topic: dict[str, list[workload.Message]] = {}
    for event in events:
        province = getattr(event, "province", None) or province_of.get(event.request_id, "IR-23")
        province_of.setdefault(event.request_id, province)
        by_topic.setdefault(topics.province(province), []).append(
            (wire.key(event), wire.encode(event), wire.headers(event))
        )
    return by_topic


def measure_sink(base: Settings, server_url: str | None, count: int, work: Path) -> Section:
    section = Section(
        "sink",
        "Sink throughput (rows/s) on both ClickHouse engines",
        f"{count:,} simulated events are written to the province topics first; then `samt124"
        f" sink --until-idle {IDLE:g}` runs as a child process (default batches: 20,000 rows or"
        " 1 s) until the topics are drained. *Gross* = events / (process wall time − the idle"
        " wait): start-up, the consumer group join and the schema check included. *Steady* ="
        " the events after the first batch / the time between the first and the last stored"
        " batch (the sink's own log), i.e. start-up subtracted. The server is Debian's"
        " ClickHouse package on its own port; chdb is the embedded engine in a fresh directory.",
    )
    events = workload.events(count)
    engines: list[tuple[str, str]] = []
    if server_url:
        engines.append(("server", server_url.rsplit("/", 1)[0] + "/bench_sink"))
    engines.append(("chdb", f"chdb://{work / 'sink-chdb'}"))
    for name, url in engines:
        settings = harness.namespace(base, f"sink{name}", clickhouse_url=url)
        harness.topics_ready(settings)
        for topic, messages in _province_messages(settings, events).items():
            fill(settings, topic, messages)
        harness.run(settings, "init", log=work / f"sink-{name}-init.log")
        seconds, out, peak = harness.run_watched(
            settings, "sink", "--until-idle", str(IDLE), log=work / f"sink-{name}.log"
        )
        stored = [int(n) for n in STORED.findall(out)]
        times = harness.log_times(out, "stored and committed")
        if sum(stored) != count:
            section.notes.append(f"{name}: the sink stored {sum(stored)} of {count} messages.")
        section.add(f"{name}: gross", count / (seconds - IDLE), "rows/s")
        steady = None
        if len(times) >= 2 and times[-1] > times[0]:
            steady = (sum(stored) - stored[0]) / (times[-1] - times[0])
        section.add(f"{name}: steady", steady, "rows/s", f"{len(stored)} batches")
        section.add(
            f"{name}: start → first batch stored",
            times[0] - (time.time() - seconds) if times else None,
            "s",
            "start-up, group join, first insert",
        )
        section.add(f"{name}: sink peak RSS", peak, "MiB", "VmHWM")
    return section


def measure_sink_restart(base: Settings, server_url: str | None, count: int, work: Path) -> Section:
    """The sink SIGKILLed half-way through ``count`` events, restarted: each event once?"""
    from consumers.clickhouse.engine import opened
    from samt124.settings import parse_clickhouse_url

    section = Section(
        "sink-restart",
        "Exactly once in ClickHouse across a SIGKILL of the sink",
        f"{count:,} simulated events are written to the province topics; `samt124 sink` runs"
        " until it has stored about half of them, is killed with SIGKILL, and is started again"
        f" with `--until-idle {IDLE:g}`. Then ClickHouse is asked how many distinct event ids"
        " it holds, how many rows analysts read (`events_unique`) and how many raw rows were"
        " inserted (a batch stored but not committed before the kill is stored again).",
    )
    if not server_url:
        section.error = "needs the ClickHouse server"
        return section
    url = server_url.rsplit("/", 1)[0] + "/bench_sink_restart"
    settings = harness.namespace(base, "sinkkill", clickhouse_url=url)
    harness.topics_ready(settings)
    events = workload.events(count)
    for topic, messages in _province_messages(settings, events).items():
        fill(settings, topic, messages)
    harness.run(settings, "init", log=work / "sink-restart-init.log")
    started = time.monotonic()
    first = harness.start(settings, "sink", log=work / "sink-restart-1.log")
    harness.wait_until(
        lambda: sum(int(n) for n in STORED.findall(first.output())) >= count // 2,
        3600,
        "the sink to store half of the events",
    )
    killed_after = sum(int(n) for n in STORED.findall(first.output()))
    first.kill()
    harness.run(settings, "sink", "--until-idle", str(IDLE), log=work / "sink-restart-2.log")
    elapsed = time.monotonic() - started - IDLE
    with opened(parse_clickhouse_url(url)) as engine:
        db = engine.database
        (distinct,) = engine.query(f"SELECT uniqExact(event_id) FROM {db}.events")[1][0]
        (readable,) = engine.query(f"SELECT count() FROM {db}.events_unique")[1][0]
        (raw,) = engine.query(f"SELECT count() FROM {db}.events")[1][0]
    section.add("events published", count, "events")
    section.add("stored before the SIGKILL", killed_after, "events", "as the sink logged")
    section.add("distinct event ids in ClickHouse", distinct, "events")
    section.add("rows analysts read (events_unique)", readable, "rows")
    section.add("raw rows inserted", raw, "rows", "repeats collapse in events_unique")
    section.add("throughput across the kill", count / elapsed, "rows/s", "first start to drained")
    verdict = "holds" if distinct == readable == count else "DOES NOT hold"
    section.notes.append(f"distinct event ids = rows analysts read = events published: {verdict}.")
    return section
