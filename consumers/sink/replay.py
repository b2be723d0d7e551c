"""Rebuilding ClickHouse from the log: the sink's topics, from their beginning, into an empty
database (after a rules change, or a lost database).

The replay is the sink itself (the same rows, the same exactly-once storage) in a consumer group
of its own, ``<namespace>-replay-<database>``, that stops at the end the log had when the replay
started. Its committed offsets are its progress: a replay killed half-way and started again goes
on from the last batch it stored (a batch stored but not committed is stored again and collapses
in ``events_unique``, as in the sink). Into a server, several processes can share the work
(:func:`replay_in_processes`): members of the same group, each storing the partitions the group
gives it; each stops when every partition it holds has reached its end, and the last one left
holds whatever the others gave back. At the end it checks that every message of the log, from
each partition's beginning to that end, is in ClickHouse (a row in ``events``, rows in
``sla_deadlines`` for a clocks' deadlines fact, or one in ``sink_errors`` for the undecodable).
"""

from __future__ import annotations

import multiprocessing
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from consumers.clickhouse.engine import Engine
from consumers.sink.loader import Sink, SinkStats, subscription
from samt124.errors import CommandFailed
from samt124.kafka.admin import admin_client
from samt124.kafka.topics import Topics
from samt124.settings import Settings

TopicPartition = tuple[str, int]
MAX_JOBS = 4  # sink processes a replay into a server starts by default, at most


def replay_group(settings: Settings, database: str) -> str:
    """The replay's consumer group: one per target database, apart from the sink's."""
    return f"{settings.topic_namespace}-replay-{database}"


@dataclass(frozen=True)
class LogRange:
    """Per partition, the first offset still in the log and the end when the replay began."""

    beginning: Mapping[TopicPartition, int]
    end: Mapping[TopicPartition, int]

    @property
    def messages(self) -> int:
        return sum(self.end[tp] - self.beginning[tp] for tp in self.end)

    def done(self, positions: Mapping[TopicPartition, int]) -> int:
        """Messages of the range below ``positions`` (a partition not there: none)."""
        return sum(
            min(max(positions.get(tp, low), low), self.end[tp]) - low
            for tp, low in self.beginning.items()
        )


def log_range(settings: Settings) -> LogRange:
    """The range of the sink's topics now."""
    from kafka import KafkaConsumer
    from kafka.structs import TopicPartition as KafkaTP

    consumer = KafkaConsumer(**settings.kafka_client_options())
    try:
        partitions = [
            KafkaTP(topic, partition)
            for topic in subscription(Topics(settings.topic_namespace))
            for partition in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        beginning = consumer.beginning_offsets(partitions)
        end = consumer.end_offsets(partitions)
    finally:
        consumer.close()
    return LogRange(
        {(tp.topic, tp.partition): offset for tp, offset in beginning.items()},
        {(tp.topic, tp.partition): offset for tp, offset in end.items()},
    )


def committed(settings: Settings, group: str, partitions: list[TopicPartition]) -> dict[Any, int]:
    """The group's committed offsets of ``partitions`` (those without one are left out)."""
    with admin_client(settings) as admin:
        found = group_offsets(admin, group)
    return {tp: found[tp] for tp in partitions if tp in found}


def start_over(settings: Settings, group: str, where: LogRange) -> None:
    """Commit each partition's beginning for the group: the next run reads the whole log."""
    from kafka import KafkaConsumer
    from kafka.structs import OffsetAndMetadata
    from kafka.structs import TopicPartition as KafkaTP

    consumer = KafkaConsumer(
        group_id=group, enable_auto_commit=False, **settings.kafka_client_options()
    )
    try:
        consumer.commit(
            {
                KafkaTP(topic, partition): OffsetAndMetadata(offset, "", -1)
                for (topic, partition), offset in where.beginning.items()
            }
        )
    finally:
        consumer.close(autocommit=False)


def rows_stored(engine: Engine) -> int:
    (count,) = engine.query(f"SELECT count() FROM {engine.database}.events")[1][0]
    return int(count)


@dataclass(frozen=True)
class Mismatch:
    topic: str
    partition: int
    in_log: int
    stored: int


def check(engine: Engine, where: LogRange) -> list[Mismatch]:
    """Partitions whose messages in the range are not all in ClickHouse, once each."""
    db = engine.database
    stored: dict[TopicPartition, int] = {}
    for table in ("events", "sink_errors", "sla_deadlines"):
        for topic, partition, low, high in _bounds(where):
            sql = (
                f"SELECT uniqExact(offset) FROM {db}.{table} WHERE topic = '{topic}'"
                f" AND partition = {partition} AND offset >= {low} AND offset < {high}"
            )
            (count,) = engine.query(sql)[1][0]
            stored[(topic, partition)] = stored.get((topic, partition), 0) + int(count)
    return [
        Mismatch(topic, partition, high - low, stored[(topic, partition)])
        for topic, partition, low, high in _bounds(where)
        if stored[(topic, partition)] != high - low
    ]


def _bounds(where: LogRange) -> list[tuple[str, int, int, int]]:
    return [
        (topic, partition, where.beginning[(topic, partition)], end)
        for (topic, partition), end in sorted(where.end.items())
        if end > where.beginning[(topic, partition)]
    ]


def replay(
    settings: Settings,
    where: LogRange,
    group: str,
    *,
    max_batch: int,
    progress: Callable[[int], None],
) -> tuple[SinkStats, bool]:
    """Store the range's messages with the sink in ``group``; ``progress(done)`` between
    batches. True when the whole range is stored, False when stopped (SIGTERM, Ctrl-C) first."""
    from kafka.structs import TopicPartition as KafkaTP

    sink = Sink(settings, max_batch=max_batch, group=group)
    sink.install_signal_handlers()
    targets = {KafkaTP(topic, partition): end for (topic, partition), end in where.end.items()}
    last = 0.0

    def reached(consumer: Any) -> bool:
        nonlocal last
        assigned = consumer.assignment()
        if not assigned or time.monotonic() - last < 0.2:
            return False
        last = time.monotonic()
        positions = {tp: consumer.position(tp) for tp in assigned}
        progress(where.done({(tp.topic, tp.partition): at for tp, at in positions.items()}))
        return all(tp in positions and positions[tp] >= end for tp, end in targets.items())

    stats = sink.run(until=reached)
    return stats, not sink.stopping.is_set()


def group_offsets(admin: Any, group: str) -> dict[TopicPartition, int]:
    """The group's committed offsets, in one request of a kafka-python admin client."""
    found = admin.list_group_offsets({group: None}).get(group, {})
    return {
        (tp.topic, tp.partition): int(meta.offset) for tp, meta in found.items() if meta.offset >= 0
    }


def replay_in_processes(
    settings: Settings,
    where: LogRange,
    group: str,
    *,
    max_batch: int,
    jobs: int,
    progress: Callable[[int], None],
    every: float = 1.0,
) -> tuple[int, bool]:
    """Store the range's messages with ``jobs`` sink processes in ``group``; ``progress(done)``
    every ``every`` seconds from the group's committed offsets. The messages committed by the
    group when all have stopped, and whether that is the whole range. SIGTERM or Ctrl-C stops
    every process after its current batch."""
    context = multiprocessing.get_context("spawn")  # no Kafka client state crosses the fork
    members = [
        context.Process(target=member, args=(settings, where, group, max_batch), name=f"replay-{n}")
        for n in range(jobs)
    ]
    for process in members:
        process.start()

    def stop(signum: int, frame: Any) -> None:  # each member finishes its batch, then stops
        for process in members:
            if process.is_alive():
                process.terminate()  # SIGTERM

    before = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with admin_client(settings) as admin:
            while any(process.is_alive() for process in members):
                for process in members:
                    process.join(timeout=every / len(members))
                progress(where.done(group_offsets(admin, group)))
            done = where.done(group_offsets(admin, group))
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
    progress(done)
    return done, done >= where.messages


def member(settings: Settings, where: LogRange, group: str, max_batch: int) -> None:
    """One process of :func:`replay_in_processes`: the sink in ``group``, until every
    partition it holds has reached the range's end (or a signal stops it)."""
    sink = Sink(settings, max_batch=max_batch, group=group)
    sink.install_signal_handlers()

    def reached(consumer: Any) -> bool:
        assigned = consumer.assignment()
        return bool(assigned) and all(
            consumer.position(tp) >= where.end.get((tp.topic, tp.partition), 0) for tp in assigned
        )

    sink.run(until=reached)


def jobs_for(wanted: int | None, engine: str, cores: int | None) -> int:
    """How many sink processes replay: as asked, else one per core (at most :data:`MAX_JOBS`)
    into a server and one into chdb, whose directory one process at a time may open."""
    if engine == "chdb":
        if wanted is not None and wanted > 1:
            raise CommandFailed(
                f"--jobs {wanted}: the embedded engine (chdb) is opened by one process at a time",
                "replay into chdb with one process (leave out --jobs), or into a server",
            )
        return 1
    return wanted if wanted is not None else max(1, min(cores or 1, MAX_JOBS))


def eta_text(seconds: float) -> str:
    """``1 h 02 min``, ``3 min 05 s``, ``42 s``."""
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def progress_line(
    done: int, total: int, elapsed: float, *, before: int = 0, width: int = 30
) -> str:
    """``[#####.....] 1,200 / 10,000 messages  12.0 %  400/s  ETA 22 s`` (pure); ``before``:
    what an earlier run had done, left out of the rate."""
    share = done / total if total else 1.0
    filled = round(width * share)
    rate = (done - before) / elapsed if elapsed > 0 else 0.0
    eta = eta_text((total - done) / rate) if rate > 0 else "?"
    return (
        f"[{'#' * filled}{'.' * (width - filled)}] {done:,} / {total:,} messages"
        f"  {100 * share:.1f} %  {rate:,.0f}/s  ETA {eta}"
    )
