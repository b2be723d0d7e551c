"""Sink throughput on both engines: pre-filled province topics → ``samt124 sink --until-idle``."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path

from consumers.sink.rows import Row
from devtools.bench import harness, workload
from devtools.bench.baselines import fill
from devtools.bench.results import Section
from samt124.contract import wire
from samt124.domain.events import Event
from samt124.kafka.topics import Topics
from samt124.settings import Settings

IDLE = 3.0
STORED = re.compile(r"stored and committed (\d+) messages")


def _province(event: Event, province_of: dict[str, str]) -> str:
    """The province of ``event``'s request (the submission's, remembered in ``province_of``)."""
    province = getattr(event, "province", None) or province_of.get(event.request_id, "IR-23")
    province_of.setdefault(event.request_id, province)
    return str(province)


def _province_messages(
    settings: Settings, events: tuple[Event, ...]
) -> dict[str, list[workload.Message]]:
    """Each event on its request's province topic, as the router would have put it."""
    topics = Topics(settings.topic_namespace)
    province_of: dict[str, str] = {}
    by_topic: dict[str, list[workload.Message]] = {}
    for event in events:
        by_topic.setdefault(topics.province(_province(event, province_of)), []).append(
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
    rows, decode_rate = _prebuilt_rows(base, events)
    section.add("rows built from Avro (decode + map, no I/O)", decode_rate, "rows/s", "one core")
    for name, url in engines:
        ceiling_url = url.replace("bench_sink", "bench_ceiling").replace("sink-chdb", "ceil-chdb")
        ceilings = _insert_ceilings(ceiling_url, rows)
        for how, rate in ceilings.items():
            section.add(f"{name}: insert ceiling, {how}", rate, "rows/s", "pre-built rows")
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
        section.ratio(f"{name}: steady / insert ceiling", steady, max(ceilings.values()))
        section.add(
            f"{name}: start → first batch stored",
            times[0] - (time.time() - seconds) if times else None,
            "s",
            "start-up, group join, first insert",
        )
        section.add(f"{name}: sink peak RSS", peak, "MiB", "VmHWM")
    return section


def _prebuilt_rows(base: Settings, events: tuple[Event, ...]) -> tuple[list[Row], float]:
    """The ``events`` rows of ``events`` as the sink builds them, and how fast it did."""
    from datetime import UTC, datetime

    from consumers.sink.loader import Message, build_batch
    from consumers.sink.rows import Position

    topics = Topics(base.topic_namespace)
    messages = [
        Message(Position(topics.province("IR-23"), 0, offset), wire.encode(event))
        for offset, event in enumerate(events)
    ]
    started = time.perf_counter()
    batch = build_batch(messages, topics, datetime.now(UTC), b"")
    return batch.events, len(messages) / (time.perf_counter() - started)


CEILING_BATCH = 20_000


def _insert_ceilings(url: str, rows: list[Row]) -> dict[str, float]:
    """Rows/s of inserting pre-built rows in 20,000-row batches: the engine's own way (columnar
    for the server, Python lists for chdb) and the row-wise way the sink used before."""
    from consumers.clickhouse.engine import ChdbEngine, ServerEngine, opened
    from consumers.clickhouse.migrations import migrate
    from consumers.sink.rows import EVENT_COLUMNS
    from samt124.settings import parse_clickhouse_url

    target = parse_clickhouse_url(url)
    rates: dict[str, float] = {}
    with opened(target) as engine:
        migrate(engine)
        db = engine.database
        names = ", ".join(EVENT_COLUMNS)

        def timed(insert: Callable[[list[Row]], None]) -> float:
            engine.execute(f"TRUNCATE TABLE {db}.events")
            started = time.perf_counter()
            for start in range(0, len(rows), CEILING_BATCH):
                insert(rows[start : start + CEILING_BATCH])
            return len(rows) / (time.perf_counter() - started)

        rates["columnar" if isinstance(engine, ServerEngine) else "Python lists"] = timed(
            lambda part: engine.insert("events", EVENT_COLUMNS, part, None)
        )
        if isinstance(engine, ServerEngine):
            client = engine._client
            sql = f"INSERT INTO {db}.events ({names}) VALUES"
            rates["row-wise"] = timed(lambda part: client.execute(sql, part))
        elif isinstance(engine, ChdbEngine):
            rates["JSONEachRow"] = timed(
                lambda part: engine.insert_json("events", EVENT_COLUMNS, part)
            )
        engine.execute(f"TRUNCATE TABLE {db}.events")
    return rates


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


REPLAYED = re.compile(r"replayed ([\d,]+) messages in ([\d.]+) s")
TEN_MILLION = 10_000_000


def _replayed(out: str) -> tuple[int, float] | None:
    """(messages, seconds) from ``samt124 replay``'s output, when it finished with its check."""
    found = REPLAYED.search(out)
    if found is None or "check: all" not in out:
        return None
    return int(found.group(1).replace(",", "")), float(found.group(2))


def measure_replay(base: Settings, server_url: str | None, count: int, work: Path) -> Section:
    """``samt124 replay`` of ``count`` events on the province topics into an empty database, with
    one sink process and with the default (one per core)."""
    from consumers.sink.replay import jobs_for

    jobs = jobs_for(None, "server", os.cpu_count())
    section = Section(
        "replay",
        "Replay: the log into an empty ClickHouse server database",
        f"{count:,} simulated events are written to the province topics first; then `samt124"
        " --clickhouse-url clickhouse://…/bench_replay replay` runs as a child process: schema,"
        " the log's range, every message stored (batches of 100,000), the check against the"
        f" log; once with `--jobs 1`, once with its default ({jobs} sink processes here, one per"
        " core), each into a database of its own. *Rate* = messages / the replay's own time"
        " (its output); *whole command* includes start-up and the check. The 10 M estimate is"
        " 10,000,000 / the rate of the default, start-up and check left out: an extrapolation,"
        " not a measurement.",
    )
    if not server_url:
        section.error = "needs the ClickHouse server"
        return section
    settings = harness.namespace(base, "replay")
    harness.topics_ready(settings)
    for topic, messages in _province_messages(settings, workload.events(count)).items():
        fill(settings, topic, messages)
    rates: dict[str, float | None] = {}
    for label, database, args in (
        ("one process", "bench_replay_one", ("--jobs", "1")),
        (f"{jobs} processes", "bench_replay", ()),
    ):
        url = server_url.rsplit("/", 1)[0] + "/" + database
        run = settings.model_copy(update={"clickhouse_url": url})
        seconds, out, peak = harness.run_watched(
            run, "replay", *args, log=work / f"replay-{database}.log"
        )
        finished = _replayed(out)
        if finished is None:
            section.error = f"the replay ({label}) did not finish with its check:\n{out[-1500:]}"
            return section
        replayed, took = finished
        rates[label] = section.add(
            f"replay into the server, {label}", replayed / took, "events/s", f"{replayed:,}"
        )
        section.add(f"whole command, {label}", seconds, "s", "start-up, schema, replay, check")
        section.add(f"replay peak RSS, {label}", peak, "MiB", "VmHWM of the command's process")
    rate = rates[f"{jobs} processes"]
    section.ratio(f"{jobs} processes / one", rate, rates["one process"])
    section.add("10 M events, estimated", TEN_MILLION / rate if rate else None, "s", "extrapolated")
    return section


def write_log_part(settings: Settings, seed: int, count: int) -> int:
    """Simulate ``count`` events with ``seed`` and write each to its request's province topic,
    generated as they are written (nothing held but the open requests' provinces); return how
    many were written. One process of :func:`measure_replay_log`'s pool."""
    from kafka import KafkaProducer

    from producers.publisher import producer_options
    from producers.simulator import simulate
    from samt124.domain.routing import referral_bodies

    topics = Topics(settings.topic_namespace)
    producer = KafkaProducer(**producer_options(settings))
    province_of: dict[str, str] = {}
    written = 0
    try:
        for event in simulate(seed, count, workload.START, body_for=referral_bodies()):
            producer.send(
                topics.province(_province(event, province_of)),
                key=wire.key(event),
                value=wire.encode(event),
                headers=wire.headers(event),
            )
            written += 1
        producer.flush()
    finally:
        producer.close()
    return written


def measure_replay_log(base: Settings, server_url: str | None, count: int, work: Path) -> Section:
    """``samt124 replay`` (its default: one sink process per core) of a log of ``count`` events
    into an empty server database, run whole: the replay the 10 M estimate extrapolates to."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from consumers.sink.replay import jobs_for

    jobs = jobs_for(None, "server", os.cpu_count())
    writers = max(1, os.cpu_count() or 1)
    section = Section(
        "replay-log",
        f"Replay of a {count:,}-event log, run whole",
        f"{count:,} simulated events are written to the province topics first, as the router"
        f" would have put them ({writers} processes, each simulating its share with a seed of its"
        " own and writing as it goes; not measured). Then `samt124 --clickhouse-url"
        " clickhouse://…/bench_replay_log replay` runs as a child process with its default"
        f" ({jobs} sink processes here): schema, the log's range, every message stored, the"
        " check against the log. *Replay* is the replay's own time (its output); *whole"
        " command* includes start-up and the check.",
    )
    if not server_url:
        section.error = "needs the ClickHouse server"
        return section
    url = server_url.rsplit("/", 1)[0] + "/bench_replay_log"
    settings = harness.namespace(base, "replaylog", clickhouse_url=url)
    harness.topics_ready(settings)
    shares = [count // writers + (1 if i < count % writers else 0) for i in range(writers)]
    started = time.monotonic()
    with ProcessPoolExecutor(writers, mp_context=get_context("spawn")) as pool:
        parts = pool.map(
            write_log_part,
            [settings] * writers,
            [workload.SEED + 1_000 + i for i in range(writers)],
            shares,
        )
        written = sum(parts)
    section.add("events written to the log", written, "events", "province topics")
    section.add("writing the log (set-up)", time.monotonic() - started, "s", f"{writers} processes")
    seconds, out, peak = harness.run_watched(settings, "replay", log=work / "replay-log.log")
    finished = _replayed(out)
    if finished is None:
        section.error = f"the replay did not finish with its check:\n{out[-1500:]}"
        return section
    replayed, took = finished
    section.add("replayed", replayed, "messages", f"of {written:,} written")
    section.add("replay", took, "s", f"{jobs} processes; target for 10 M: 600 s")
    section.add("replay rate", replayed / took, "events/s")
    section.add("whole command", seconds, "s", "start-up, schema, replay, check")
    section.add("replay peak RSS", peak, "MiB", "VmHWM of the command's process")
    if replayed != written:
        section.error = f"replayed {replayed:,} messages of the {written:,} written"
    return section
