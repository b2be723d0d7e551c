"""The sink's loop with a consumer and an engine of its own: one batch in flight, inserted on
another thread; offsets committed in order, from the consumer's thread, after the insert."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import pytest
from kafka.structs import TopicPartition

from consumers.clickhouse.engine import EngineError
from consumers.sink import loader
from consumers.sink.loader import Sink
from devtools.bench import workload
from samt124.contract import wire
from samt124.kafka.topics import Topics
from samt124.settings import Settings

SETTINGS = Settings(topic_namespace="ns")
TOPIC = Topics("ns").province("IR-23")
TP = TopicPartition(TOPIC, 0)


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    value: bytes


class Consumer:
    """Hands out its records a few per poll; notes every call and the thread it came from."""

    def __init__(self, records: list[Record], per_poll: int) -> None:
        self.records = records
        self.per_poll = per_poll
        self.at = 0
        self.log: list[tuple[str, Any]] = []
        self.threads: set[int] = set()
        self.paused_now: set[TopicPartition] = set()

    def _called(self, what: str, detail: Any = None) -> None:
        self.threads.add(threading.get_ident())
        self.log.append((what, detail))

    def poll(self, timeout_ms: int = 0, max_records: int | None = None) -> dict[Any, Any]:
        self._called("poll")
        if self.paused_now or self.at >= len(self.records):
            return {}
        taken = self.records[self.at : self.at + min(self.per_poll, max_records or 1 << 30)]
        self.at += len(taken)
        return {TP: taken}

    def assignment(self) -> set[TopicPartition]:
        self._called("assignment")
        return {TP}

    def commit(self, offsets: dict[Any, Any]) -> None:
        self._called("commit", {tp: meta.offset for tp, meta in offsets.items()})

    def pause(self, *tps: TopicPartition) -> None:
        self._called("pause")
        self.paused_now.update(tps)

    def paused(self) -> set[TopicPartition]:
        return set(self.paused_now)

    def resume(self, *tps: TopicPartition) -> None:
        self._called("resume")
        self.paused_now.difference_update(tps)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self._called("seek", offset)
        self.at = offset

    def close(self, autocommit: bool = True) -> None:
        self._called("close")


class Engine:
    """Takes inserts (failing the first ``failures`` of the events table), one at a time."""

    def __init__(self, log: list[tuple[str, Any]], failures: int = 0) -> None:
        self.log = log
        self.failures = failures
        self.busy = threading.Lock()
        self.threads: set[int] = set()

    def insert(self, table: str, columns: Any, rows: list[Any], token: str | None) -> None:
        self.threads.add(threading.get_ident())
        assert self.busy.acquire(blocking=False), "two inserts at once"
        try:
            if table == "events" and self.failures:
                self.failures -= 1
                raise EngineError("not now")
            if table == "events":
                self.log.append(("insert", [row[19] for row in rows]))  # their offsets
        finally:
            self.busy.release()

    def close(self) -> None:
        pass


def _run(
    monkeypatch: pytest.MonkeyPatch, count: int, failures: int, **run: Any
) -> tuple[Sink, Consumer, Engine]:
    events = workload.events(count)
    consumer = Consumer(
        [Record(TOPIC, 0, i, wire.encode(e)) for i, e in enumerate(events)], per_poll=3
    )
    engine = Engine(consumer.log, failures)
    monkeypatch.setattr(loader, "connect", lambda target: engine)
    sink = Sink(SETTINGS, max_batch=3, max_wait=0.05, max_backoff=0.05)
    monkeypatch.setattr(sink, "_consumer", lambda: consumer)
    monkeypatch.setattr(sink, "_wait_in_group", lambda consumer, seconds: None)
    sink.run(**run)
    return sink, consumer, engine


def test_batches_are_inserted_in_order_and_each_committed_after_its_insert(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counts: list[int] = []
    sink, consumer, engine = _run(
        monkeypatch,
        12,
        failures=2,
        until_idle=0.2,
        stored=lambda stats: counts.append(stats.messages),
    )
    steps = [(what, detail) for what, detail in consumer.log if what in {"insert", "commit"}]
    assert steps == [
        step
        for first in range(0, 12, 3)
        for step in (
            ("insert", list(range(first, first + 3))),
            ("commit", {TP: first + 3}),
        )
    ]
    assert counts == [3, 6, 9, 12]
    assert sink.stats.retries == 2
    assert len(consumer.threads) == 1  # the consumer is called from the run's thread only
    assert consumer.threads.isdisjoint(engine.threads)  # the inserts from another thread


def test_until_returns_with_the_batch_in_flight_stored_and_committed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # true as soon as every record was read: the last batch is in flight or not built yet
    sink, consumer, _ = _run(monkeypatch, 10, failures=0, until=lambda c: c.at >= 10)
    commits = [detail for what, detail in consumer.log if what == "commit"]
    assert commits[-1] == {TP: 10}
    assert sink.stats.messages == 10


def test_stopped_while_clickhouse_refuses_leaves_the_batch_uncommitted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events = workload.events(3)
    consumer = Consumer([Record(TOPIC, 0, i, wire.encode(e)) for i, e in enumerate(events)], 3)
    engine = Engine(consumer.log, failures=1 << 30)
    monkeypatch.setattr(loader, "connect", lambda target: engine)
    sink = Sink(SETTINGS, max_batch=3, max_wait=0.05, max_backoff=0.05)
    monkeypatch.setattr(sink, "_consumer", lambda: consumer)

    def waited(consumer: Any, seconds: float) -> None:
        sink.stop()

    monkeypatch.setattr(sink, "_wait_in_group", waited)
    stats = sink.run(until_idle=5.0)
    assert not [what for what, _ in consumer.log if what == "commit"]
    assert stats.messages == 0
    assert stats.retries == 1
