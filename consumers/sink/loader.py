"""The ClickHouse sink: provincial and SLA topics into ClickHouse, every event exactly once.

The dead-letter topic goes to ``dead_letters`` beside them (:mod:`consumers.sink.dead_letters`),
through the same batches, commits and retries.

Delivery is at least once and the storage makes it exactly once for readers:

* offsets are committed only after ClickHouse accepted the whole batch, so a crash loses
  nothing (the uncommitted tail is read again);
* a batch ClickHouse refused or could not take is retried, the same rows, with back-off, for
  as long as it takes; the sink never skips past it and never commits past what was stored;
* each insert carries a deduplication token derived from the batch's topic-partition-offset
  ranges (where the engine supports tokens), so an identical retry is dropped by ClickHouse;
* whatever is delivered twice anyway (a crash between insert and commit, a rebalance, a
  server without tokens) collapses in the ReplacingMergeTree, and analysts read through
  ``events_unique``, which counts each event once.

A batch is inserted by one inserter thread while the consumer's thread reads and builds the
next one: at most one batch is in flight, and the consumer's thread alone calls the consumer
(kafka-python's is not thread safe). It takes the outcome of the batch in flight before it
hands over the next, so batches are stored and their offsets committed in the order they were
read, and a batch's offsets only after all of its rows were stored; a failed insert is retried
from there, as above. A rebalance while a batch is in flight may give its partitions to another
member before the batch is committed: that member reads the batch again and stores it a second
time, and the copies collapse as above.

A message that does not decode was dead-lettered by the router already, so reaching the sink
is a bug: it is logged with its coordinates and stored in ``sink_errors``, never dropped.
"""

from __future__ import annotations

import hashlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from kafka.errors import KafkaError

from consumers.clickhouse.dead_letters import DEAD_LETTER_COLUMNS
from consumers.clickhouse.engine import Engine, EngineError, connect
from consumers.sink.columns import event_row_of, seconds, sla_row_of
from consumers.sink.dead_letters import dead_letter_row
from consumers.sink.metrics import SinkMetrics
from consumers.sink.rows import (
    DEADLINE_COLUMNS,
    ERROR_COLUMNS,
    EVENT_COLUMNS,
    SLA_COLUMNS,
    Position,
    Row,
    deadline_rows,
    error_row,
)
from samt124.contract.wire import DecodeError, default_codec
from samt124.domain.events import SLA_EVENT_TYPES, SlaDeadlinesSet, from_record
from samt124.kafka.topics import Topics
from samt124.settings import Settings

log = logging.getLogger(__name__)

# How long the inserter leaves a chdb directory closed between two batches at least: twice the
# 50 ms at which a waiting reader tries to open it again, so that a reader gets in between two
# batches even when the next one is built before the last is stored.
CHDB_GAP = 0.1


def group_id(settings: Settings) -> str:
    """The sink's consumer group: ``samt124-sink`` for the default namespace."""
    return f"{settings.topic_namespace}-sink"


@dataclass(frozen=True)
class Message:
    """What the sink needs of a Kafka record."""

    position: Position
    value: bytes
    # read for the dead-letter topic's rows only
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp_ms: int = 0


@dataclass(frozen=True)
class Batch:
    """The rows of a batch per table, and the offsets to commit once they are stored."""

    events: list[Row]
    sla: list[Row]
    errors: list[Row]
    next_offsets: dict[tuple[str, int], int]  # (topic, partition) -> offset after the last
    token: str
    dead_letters: list[Row] = field(default_factory=list)
    deadlines: list[Row] = field(default_factory=list)  # sla_deadlines: three per fact


@dataclass
class SinkStats:
    messages: int = 0
    events: int = 0
    sla_events: int = 0
    errors: int = 0
    batches: int = 0
    retries: int = 0
    dead_letters: int = 0
    deadlines: int = 0
    started: float = field(default_factory=time.monotonic)


def subscription(topics: Topics) -> list[str]:
    """Every provincial topic and the SLA topic of the namespace, by name.

    Names rather than a pattern: a pattern makes the client match it against every topic of the
    cluster at each metadata refresh, and on a cluster with thousands of topics kafka-python
    then rejoined the group after every refresh, without end.
    """
    return [*topics.provinces(), topics.sla, topics.dlq]


def batch_token(messages: Sequence[Message]) -> str:
    """A token naming the batch by its offset ranges: the same messages give the same token."""
    ranges: dict[tuple[str, int], tuple[int, int]] = {}
    for message in messages:
        where = (message.position.topic, message.position.partition)
        low, high = ranges.get(where, (message.position.offset, message.position.offset))
        ranges[where] = (min(low, message.position.offset), max(high, message.position.offset))
    return _token(ranges)


def _token(ranges: dict[tuple[str, int], tuple[int, int]]) -> str:
    text = ";".join(f"{t}:{p}:{lo}-{hi}" for (t, p), (lo, hi) in sorted(ranges.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def build_batch(
    messages: Sequence[Message], topics: Topics, ingested_at: datetime, pii_key: bytes
) -> Batch:
    """Decode and map a batch of messages (pure apart from logging the undecodable ones).

    Straight from each raw Avro record to its rows (:mod:`consumers.sink.columns`), times as
    epoch seconds; the same rows :func:`event_row` and :func:`sla_row` describe. The offset
    ranges, and from them the token (:func:`batch_token`), are gathered in the same pass.
    """
    events: list[Row] = []
    sla: list[Row] = []
    errors: list[Row] = []
    dead: list[Row] = []
    deadlines: list[Row] = []
    lows: dict[tuple[str, int], int] = {}
    next_offsets: dict[tuple[str, int], int] = {}
    ingested = seconds(ingested_at)
    codec = default_codec()
    decode_raw = codec.decode_raw
    raw_fields = codec.raw_fields
    add_event = events.append
    sla_types = SLA_EVENT_TYPES
    dlq = topics.dlq
    prefix = topics.province_prefix
    provinces: dict[str, str] = {}  # topic -> the province it is of ("" for none)
    for message in messages:
        position = message.position
        topic, offset = position.topic, position.offset
        where = (topic, position.partition)
        low = lows.get(where)
        if low is None:
            lows[where] = offset
            next_offsets[where] = offset + 1
        else:
            if offset < low:
                lows[where] = offset
            if offset >= next_offsets[where]:
                next_offsets[where] = offset + 1
        if topic == dlq:
            record_time = datetime.fromtimestamp(message.timestamp_ms / 1000, UTC)
            dead.append(
                dead_letter_row(
                    position, message.key, message.value, message.headers, record_time, ingested_at
                )
            )
            continue
        try:
            name, record = decode_raw(message.value)
        except DecodeError as error:
            _undecodable(position, error, message.value, ingested_at, errors)
            continue
        if name == "SlaDeadlinesSet":  # the clocks' deadlines go to sla_deadlines, not events
            _deadlines(name, position, message.value, ingested_at, deadlines, errors)
            continue
        topic_province = provinces.get(topic)
        if topic_province is None:
            topic_province = topic[len(prefix) :] if topics.is_province(topic) else ""
            provinces[topic] = topic_province
        add_event(
            event_row_of(
                name, record, raw_fields[name], position, topic_province, ingested, pii_key
            )
        )
        if name in sla_types:
            sla_fact = sla_row_of(name, record, ingested)
            assert sla_fact is not None
            sla.append(sla_fact)
    ranges = {where: (low, next_offsets[where] - 1) for where, low in lows.items()}
    return Batch(
        events,
        sla,
        errors,
        next_offsets,
        _token(ranges),
        dead_letters=dead,
        deadlines=deadlines,
    )


def _undecodable(
    position: Position, error: DecodeError, value: bytes, ingested_at: datetime, errors: list[Row]
) -> None:
    # the reason says it all, no traceback
    log.error(
        "undecodable message at %s[%d]@%d: %s",
        position.topic,
        position.partition,
        position.offset,
        error.reason,
    )
    errors.append(error_row(position, error.reason, value, ingested_at))


def _deadlines(
    name: str,
    position: Position,
    value: bytes,
    ingested_at: datetime,
    deadlines: list[Row],
    errors: list[Row],
) -> None:
    """The ``sla_deadlines`` rows of a deadlines fact, read again as the event it is."""
    try:
        _, record = default_codec().decode_record(value)
    except DecodeError as error:  # decode_raw took it, so this does not happen
        _undecodable(position, error, value, ingested_at, errors)
        return
    try:
        fact = from_record(name, record)
    except Exception as exc:
        reason = f"{name} record does not fit the event: {exc}"
        errors.append(error_row(position, reason, value, ingested_at))
        return
    assert isinstance(fact, SlaDeadlinesSet)
    deadlines.extend(deadline_rows(fact, position, ingested_at))


def store(engine: Engine, batch: Batch) -> None:
    """Insert a batch's rows; identical retries are deduplicated per table by the token."""
    engine.insert("events", EVENT_COLUMNS, batch.events, f"events:{batch.token}")
    engine.insert("sla_events", SLA_COLUMNS, batch.sla, f"sla:{batch.token}")
    engine.insert("sink_errors", ERROR_COLUMNS, batch.errors, f"errors:{batch.token}")
    engine.insert("dead_letters", DEAD_LETTER_COLUMNS, batch.dead_letters, f"dlq:{batch.token}")
    engine.insert("sla_deadlines", DEADLINE_COLUMNS, batch.deadlines, f"deadlines:{batch.token}")


def _message(record: Any, topics: Topics) -> Message:
    """A Kafka record as the sink keeps it: key, headers and time for dead letters only."""
    position = Position(record.topic, record.partition, record.offset)
    if record.topic != topics.dlq:
        return Message(position, record.value)
    headers = tuple((str(k), bytes(v or b"")) for k, v in (record.headers or ()))
    return Message(position, record.value or b"", record.key, headers, int(record.timestamp))


class _Stopped(Exception):
    """Asked to stop while ClickHouse was not taking a batch."""


@dataclass(frozen=True)
class _InFlight:
    """A batch handed to the inserter thread, and its insert."""

    batch: Batch
    messages: int
    insert: Future[None]


class Sink:
    """Consume, batch by size and time, store, then commit."""

    def __init__(
        self,
        settings: Settings,
        *,
        max_batch: int = 20_000,
        max_wait: float = 1.0,
        max_backoff: float = 30.0,
        group: str | None = None,
    ) -> None:
        self.settings = settings
        self.group = group or group_id(settings)
        self.topics = Topics(settings.topic_namespace)
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.max_backoff = max_backoff
        self.stats = SinkStats()
        self.metrics = SinkMetrics(self.stats)
        self.stopping = threading.Event()
        self._uncommitted: dict[Any, Any] = {}  # stored, not committed yet (a rebalance, say)
        key = settings.pii_hash_key
        self._pii_key = key.get_secret_value().encode() if key is not None else b""
        self._engine: Engine | None = None  # opened, used and closed by the inserter thread
        self._stored: Callable[[SinkStats], None] | None = None
        self._inserter: ThreadPoolExecutor | None = None
        self._inflight: _InFlight | None = None
        self._chdb_closed_at = 0.0  # monotonic time the inserter last closed a chdb directory

    def stop(self, signum: int | None = None, frame: FrameType | None = None) -> None:
        """Finish the current batch, commit it and return from :meth:`run`."""
        self.stopping.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

    def _consumer(self) -> Any:
        from kafka import KafkaConsumer

        consumer = KafkaConsumer(
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.max_batch,
            **self.settings.kafka_client_options(),
        )
        topics = subscription(self.topics)
        # know every topic's partitions before joining: without it the group's first assignment
        # warns of "no partition metadata" once per topic
        for topic in topics:
            consumer.partitions_for_topic(topic)
        consumer.subscribe(topics)
        return consumer

    def run(
        self,
        until_idle: float | None = None,
        *,
        until: Callable[[Any], bool] | None = None,
        stored: Callable[[SinkStats], None] | None = None,
    ) -> SinkStats:
        """Run until stopped, or until nothing arrived for ``until_idle`` seconds, or until
        ``until(consumer)`` is true with nothing pending (checked between batches; the batch
        in flight is stored and committed before it returns); ``stored`` is called after each
        batch is stored and committed."""
        consumer = self._consumer()
        self._stored = stored
        self._inserter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sink-insert")
        pending: list[Message] = []
        first_at = 0.0
        last_message_at = time.monotonic()
        try:
            while not self.stopping.is_set():
                timeout = self.max_wait
                if pending:
                    timeout = max(0.01, first_at + self.max_wait - time.monotonic())
                try:
                    polled = consumer.poll(
                        timeout_ms=int(timeout * 1000), max_records=self.max_batch - len(pending)
                    )
                except KafkaError as error:  # the broker is away: keep what is pending, retry
                    log.warning("Kafka did not answer (%s); polling again in 1 s", error)
                    self.stopping.wait(1.0)
                    continue
                if self._uncommitted:  # the poll finished a rebalance: commit what is stored
                    self._commit(consumer, {})
                inflight = self._inflight
                if inflight is not None and (not polled or inflight.insert.done()):
                    self._settle(consumer)  # nothing new to build meanwhile, or it is done
                now = time.monotonic()
                for records in polled.values():
                    for record in records:
                        if not pending:
                            first_at = now
                        pending.append(_message(record, self.topics))
                if polled or not consumer.assignment():
                    last_message_at = now  # idle counts from having partitions and no data
                if pending and (len(pending) >= self.max_batch or now - first_at >= self.max_wait):
                    self._flush(consumer, pending)
                    pending = []
                elif not pending and until_idle is not None and now - last_message_at >= until_idle:
                    break
                if not pending and until is not None and until(consumer):
                    break
            if pending:
                self._flush(consumer, pending)
            self._settle(consumer)
        except _Stopped:
            log.warning("stopped before ClickHouse took the batch: its offsets stay uncommitted")
        finally:
            self._end_inserter()
            consumer.close(autocommit=False)
        return self.stats

    def _end_inserter(self) -> None:
        """Wait for an insert still under way (its batch stays uncommitted), close the engine
        on the inserter thread and end it."""
        inflight, self._inflight = self._inflight, None
        if inflight is not None:
            wait([inflight.insert])
        if self._inserter is not None:
            inserter, self._inserter = self._inserter, None
            inserter.submit(self._close_engine).result()
            inserter.shutdown()

    def _commit(self, consumer: Any, offsets: dict[Any, Any]) -> None:
        """Commit what was stored, with what earlier commits left over, for owned partitions.

        A partition given to another member meanwhile is left to it: it reads the batch again
        and the copies collapse on ``event_id``.
        """
        wanted = {**self._uncommitted, **offsets}
        owned = consumer.assignment()
        wanted = {tp: offset for tp, offset in wanted.items() if tp in owned}
        try:
            if wanted:
                consumer.commit(wanted)
        except KafkaError as error:
            log.warning("offsets not committed yet (%s); trying again after the next poll", error)
            self._uncommitted = wanted
        else:
            self._uncommitted = {}

    def _flush(self, consumer: Any, messages: list[Message]) -> None:
        """Build the batch of ``messages`` while the one before is inserted, settle that one,
        then hand this one to the inserter thread."""
        batch = build_batch(messages, self.topics, datetime.now(UTC), self._pii_key)
        self._settle(consumer)
        self._inflight = _InFlight(batch, len(messages), self._submit(batch))

    def _submit(self, batch: Batch) -> Future[None]:
        assert self._inserter is not None, "the inserter runs while run() does"
        return self._inserter.submit(self._insert, batch)

    def _settle(self, consumer: Any) -> None:
        """See the batch in flight stored (retrying it as long as it takes), commit its offsets
        and count it; nothing when no batch is in flight."""
        from kafka.structs import OffsetAndMetadata, TopicPartition

        inflight, self._inflight = self._inflight, None
        if inflight is None:
            return
        batch = inflight.batch
        self._store_with_retry(inflight, consumer)
        offsets = {
            TopicPartition(topic, partition): OffsetAndMetadata(offset, "", -1)
            for (topic, partition), offset in batch.next_offsets.items()
        }
        self._commit(consumer, offsets)
        self.stats.messages += inflight.messages
        self.stats.events += len(batch.events)
        self.stats.sla_events += len(batch.sla)
        self.stats.errors += len(batch.errors)
        self.stats.dead_letters += len(batch.dead_letters)
        self.stats.deadlines += len(batch.deadlines)
        self.stats.batches += 1
        self.metrics.batch_size.observe(inflight.messages)
        self.metrics.last_batch = time.time()
        log.info("stored and committed %d messages", inflight.messages)
        if self._stored is not None:
            self._stored(self.stats)

    def _store_with_retry(self, inflight: _InFlight, consumer: Any) -> None:
        """Wait for the batch's insert; while ClickHouse does not take it, insert the very same
        rows again, with back-off, until it does.

        While it waits, the consumer stays in its group (polling with every partition paused),
        so that an outage of ClickHouse does not turn into a rebalance.
        """
        delay = 0.5
        insert = inflight.insert
        while True:
            try:
                insert.result()
            except EngineError as error:
                if self.stopping.is_set():
                    raise _Stopped from error
                self.stats.retries += 1
                log.warning(
                    "ClickHouse did not take the batch (%s); retrying in %.1f s", error, delay
                )
                self._wait_in_group(consumer, delay)
                delay = min(self.max_backoff, delay * 2)
                insert = self._submit(inflight.batch)
            else:
                consumer.resume(*consumer.paused())
                return

    def _insert(self, batch: Batch) -> None:
        """One attempt at storing ``batch`` (on the inserter thread). The connection is closed
        after a failure, and after each batch into chdb, whose directory then stays closed for
        :data:`CHDB_GAP` seconds at least, so that readers can open it between batches."""
        chdb = self.settings.clickhouse.engine == "chdb"
        if chdb and self._engine is None:
            time.sleep(max(0.0, self._chdb_closed_at + CHDB_GAP - time.monotonic()))
        try:
            engine = self._open_engine()
            started = time.monotonic()
            store(engine, batch)
            self.metrics.insert_duration.observe(time.monotonic() - started)
        except EngineError:
            self._close_engine()
            raise
        if chdb:
            self._close_engine()
            self._chdb_closed_at = time.monotonic()

    def _wait_in_group(self, consumer: Any, seconds: float) -> None:
        """Sleep by polling paused partitions; anything fetched anyway is read again later."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            consumer.pause(*consumer.assignment())
            try:
                polled = consumer.poll(timeout_ms=int(left * 1000))
            except KafkaError as error:
                log.warning("Kafka did not answer while waiting (%s)", error)
                time.sleep(min(left, 1.0))
                continue
            for tp, records in polled.items():
                consumer.seek(tp, records[0].offset)

    def _open_engine(self) -> Engine:
        if self._engine is None:
            self._engine = connect(self.settings.clickhouse)
        return self._engine

    def _close_engine(self) -> None:
        if self._engine is not None:
            engine, self._engine = self._engine, None
            try:
                engine.close()
            except Exception:
                log.exception("closing the ClickHouse connection failed")
