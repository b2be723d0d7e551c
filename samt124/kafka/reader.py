"""Reading whole topics back: what the benchmarks and the tests check the pipeline's output with."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from samt124.settings import Settings


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]
    timestamp_ms: int


class ReadTimeout(TimeoutError):
    """The topics were not read to their end offsets in time."""


def read_topics(settings: Settings, topics: Sequence[str], timeout: float = 600.0) -> list[Record]:
    """Every record in ``topics``, from the beginning to the end offsets seen at the start.

    Topics that do not exist read as empty. Raises :class:`ReadTimeout` rather than return part.
    """
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        **settings.kafka_client_options(),
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    try:
        partitions = _partitions(consumer, topics)
        if not partitions:
            return []
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        ends = consumer.end_offsets(partitions)
        remaining = {tp for tp in partitions if ends[tp] > 0}
        records: list[Record] = []
        deadline = time.monotonic() + timeout
        while remaining:
            if time.monotonic() > deadline:
                raise ReadTimeout(f"reading {', '.join(topics)} took over {timeout:.0f} s")
            for tp, batch in consumer.poll(timeout_ms=500, max_records=50_000).items():
                records.extend(
                    Record(
                        m.topic,
                        m.partition,
                        m.offset,
                        m.key,
                        m.value,
                        dict(m.headers or []),
                        m.timestamp,
                    )
                    for m in batch
                )
                if consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        return records
    finally:
        consumer.close()


def count_records(settings: Settings, topics: Sequence[str], timeout_ms: int = 30_000) -> int:
    """How many records ``topics`` hold together (the sum of their log-end offsets)."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(**settings.kafka_client_options(), request_timeout_ms=timeout_ms)
    try:
        partitions = _partitions(consumer, topics)
        return sum(consumer.end_offsets(partitions).values()) if partitions else 0
    finally:
        consumer.close()


def _partitions(consumer: Any, topics: Sequence[str]) -> list[Any]:
    """Every partition of those ``topics`` that exist."""
    from kafka import TopicPartition

    available = consumer.topics()
    return [
        TopicPartition(topic, p)
        for topic in topics
        if topic in available
        for p in sorted(consumer.partitions_for_topic(topic) or ())
    ]
