"""``samt124 verify``: proof that every intake message the worker acknowledged was handled.

The worker promises that each message of ``samt124.intake`` ends in exactly one of two places:
its province's topic (the event, by its id) or ``samt124.dlq`` (the original bytes, with the
topic, partition and offset it was read at). This module checks that promise from the topics
alone, for every message below the worker group's committed offsets (what the worker has
acknowledged) in a range of intake time:

* **routed** — its event id is on a province topic;
* **dead-lettered** — a dead letter names its place in the intake log;
* **moved** — it was on another partition than its request's and was copied there (the header
  ``moved-from`` on the copy names it); it counts as what became of the copy;
* **missing** — none of these: the guarantee was broken;
* **both** — routed and dead-lettered;
* **duplicated** — routed more than once, or dead-lettered more than once (at-least-once
  delivery allows repeats; downstream keeps one by event id).

Messages at or past the committed offsets are **pending**: not yet acknowledged, not judged.
:func:`reconcile` is the pure part; :func:`verify` reads the topics.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from samt124.contract import wire
from samt124.kafka.topics import Topics
from samt124.settings import Settings
from streams.pipeline import MOVED_FROM

STALL_SECONDS = 60.0
Place = tuple[int, int]  # (partition, offset) in the intake topic


@dataclass(frozen=True)
class IntakeMessage:
    partition: int
    offset: int
    event_id: str | None  # None: it does not decode
    moved_from: Place | None = None  # for a copy the worker made: where the original was


@dataclass
class PartitionReport:
    partition: int
    first: int  # the first offset judged
    committed: int  # the group's committed offset: judged below it
    end: int  # the log-end offset when verify started
    judged: int = 0
    routed: int = 0
    dead_lettered: int = 0
    moved: int = 0
    missing: list[int] = field(default_factory=list)
    both: list[int] = field(default_factory=list)

    @property
    def pending(self) -> int:
        return max(self.end - max(self.committed, self.first), 0)


@dataclass
class Report:
    partitions: list[PartitionReport]
    duplicated_routes: int = 0  # event ids routed more than once
    duplicated_dead_letters: int = 0  # intake places dead-lettered more than once

    @property
    def missing(self) -> int:
        return sum(len(p.missing) for p in self.partitions)

    @property
    def both(self) -> int:
        return sum(len(p.both) for p in self.partitions)

    def total(self, name: str) -> int:
        return sum(int(getattr(p, name)) for p in self.partitions)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.missing == 0,
            "judged": self.total("judged"),
            "routed": self.total("routed"),
            "dead_lettered": self.total("dead_lettered"),
            "moved": self.total("moved"),
            "missing": self.missing,
            "both": self.both,
            "pending": self.total("pending"),
            "duplicated_routes": self.duplicated_routes,
            "duplicated_dead_letters": self.duplicated_dead_letters,
            "partitions": [
                {
                    "partition": p.partition,
                    "first": p.first,
                    "committed": p.committed,
                    "end": p.end,
                    "judged": p.judged,
                    "routed": p.routed,
                    "dead_lettered": p.dead_lettered,
                    "moved": p.moved,
                    "pending": p.pending,
                    "missing_offsets": p.missing,
                    "both_offsets": p.both,
                }
                for p in self.partitions
            ],
        }


def reconcile(
    judged: Iterable[IntakeMessage],
    copies: Iterable[IntakeMessage],
    routed: Counter[str],
    dead: Counter[Place],
    bounds: Mapping[int, tuple[int, int, int]],
) -> Report:
    """Judge each intake message.

    ``judged``: the messages below the committed offsets in the range; ``copies``: every copy
    the worker made (messages with ``moved_from``), wherever they are; ``routed``: event ids on
    province topics, counted; ``dead``: intake places in dead letters, counted; ``bounds``:
    per partition (first offset judged, committed offset, log-end offset).
    """
    copy_of: dict[Place, IntakeMessage] = {
        c.moved_from: c for c in copies if c.moved_from is not None
    }
    reports = {p: PartitionReport(p, *b) for p, b in sorted(bounds.items())}
    for message in judged:
        report = reports[message.partition]
        report.judged += 1
        place = (message.partition, message.offset)
        copy = copy_of.get(place)
        is_dead = dead[place] > 0 or (copy is not None and dead[(copy.partition, copy.offset)] > 0)
        is_routed = message.event_id is not None and routed[message.event_id] > 0
        if copy is not None:
            report.moved += 1
        if is_dead and is_routed:
            report.both.append(message.offset)
        elif is_dead:
            report.dead_lettered += 1
        elif is_routed:
            report.routed += 1
        else:
            report.missing.append(message.offset)
    return Report(
        list(reports.values()),
        duplicated_routes=sum(1 for n in routed.values() if n > 1),
        duplicated_dead_letters=sum(1 for n in dead.values() if n > 1),
    )


# -- reading the topics -------------------------------------------------------------------------


def verify(
    settings: Settings,
    *,
    group: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Report:
    """Read the intake, province and dead-letter topics and :func:`reconcile` them."""
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

    topics = Topics(settings.topic_namespace)
    consumer = KafkaConsumer(
        **settings.kafka_client_options(),
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    admin = KafkaAdminClient(**settings.kafka_client_options())
    try:
        available = consumer.topics()
        if topics.intake not in available:
            return Report([])
        intake = [
            TopicPartition(topics.intake, p)
            for p in sorted(consumer.partitions_for_topic(topics.intake) or ())
        ]
        offsets = admin.list_group_offsets({group: intake}).get(group, {})
        begin = consumer.beginning_offsets(intake)
        end = consumer.end_offsets(intake)
        first = _offsets_at(consumer, intake, since, begin, end)
        last = _offsets_at(consumer, intake, until, end, end) if until else end
        bounds: dict[int, tuple[int, int, int]] = {}
        stops: dict[Any, int] = {}
        for tp in intake:
            meta = offsets.get(tp)
            committed = int(meta.offset) if meta is not None and meta.offset >= 0 else begin[tp]
            bounds[tp.partition] = (first[tp], committed, last[tp])
            stops[tp] = min(committed, last[tp])
        judged: list[IntakeMessage] = []
        copies: list[IntakeMessage] = []
        whole = {tp: (begin[tp], end[tp]) for tp in intake}
        for record in _scan(consumer, whole):
            message = _intake_message(record)
            if message.moved_from is not None:
                copies.append(message)
            tp = TopicPartition(record.topic, record.partition)
            if first[tp] <= record.offset < stops[tp]:
                judged.append(message)
        province_topics = sorted(t for t in available if topics.is_province(t))
        routed: Counter[str] = Counter()
        for record in _scan(consumer, _whole(consumer, province_topics)):
            event_id = _event_id(record.value)
            if event_id is not None:
                routed[event_id] += 1
        dead: Counter[Place] = Counter()
        if topics.dlq in available:
            for record in _scan(consumer, _whole(consumer, [topics.dlq])):
                headers = dict(record.headers or [])
                if headers.get("dlq-topic") == topics.intake.encode():
                    place = (int(headers["dlq-partition"]), int(headers["dlq-offset"]))
                    dead[place] += 1
        return reconcile(judged, copies, routed, dead, bounds)
    finally:
        admin.close()
        consumer.close()


def _intake_message(record: Any) -> IntakeMessage:
    moved = dict(record.headers or []).get(MOVED_FROM)
    return IntakeMessage(
        record.partition, record.offset, _event_id(record.value), _place(moved) if moved else None
    )


def _place(header: bytes) -> Place | None:
    """``topic[partition]@offset`` as the worker writes it into ``moved-from``."""
    text = header.decode("utf-8", "replace")
    try:
        rest = text[text.rindex("[") + 1 :]
        partition, offset = rest.split("]@")
        return int(partition), int(offset)
    except ValueError:
        return None


def _event_id(value: bytes | None) -> str | None:
    try:
        return wire.decode(value or b"").event_id
    except wire.DecodeError:
        return None


def _offsets_at(
    consumer: Any,
    partitions: list[Any],
    when: datetime | None,
    default: Mapping[Any, int],
    end: Mapping[Any, int],
) -> dict[Any, int]:
    if when is None:
        return dict(default)
    found = consumer.offsets_for_times({tp: int(when.timestamp() * 1000) for tp in partitions})
    return {tp: (found[tp].offset if found.get(tp) else end[tp]) for tp in partitions}


def _whole(consumer: Any, topics: list[str]) -> dict[Any, tuple[int, int]]:
    from kafka import TopicPartition

    partitions = [
        TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())
    ]
    if not partitions:
        return {}
    begin = consumer.beginning_offsets(partitions)
    end = consumer.end_offsets(partitions)
    return {tp: (begin[tp], end[tp]) for tp in partitions}


def _scan(consumer: Any, ranges: Mapping[Any, tuple[int, int]]) -> Iterator[Any]:
    """Every record in ``[start, stop)`` of each partition."""
    wanted = {tp: r for tp, r in ranges.items() if r[1] > r[0]}
    if not wanted:
        return
    consumer.assign(list(wanted))
    for tp, (start, _) in wanted.items():
        consumer.seek(tp, start)
    remaining = set(wanted)
    progress = time.monotonic()
    while remaining:
        polled = consumer.poll(timeout_ms=1000, max_records=50_000)
        if polled:
            progress = time.monotonic()
        elif time.monotonic() - progress > STALL_SECONDS:
            names = ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(remaining))
            raise TimeoutError(f"no records from {names} for {STALL_SECONDS:.0f} s")
        for tp, batch in polled.items():
            stop = wanted[tp][1]
            for record in batch:
                if record.offset < stop:
                    yield record
            if consumer.position(tp) >= stop:
                remaining.discard(tp)
                consumer.pause(tp)
