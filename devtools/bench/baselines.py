"""The yardsticks: Kafka's own perf tools (the broker's limit on this machine) and a bare Python
pass-through loop (the floor of Python client overhead), both on the benchmark's broker."""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from dataclasses import dataclass

from devtools.bench.harness import BenchError
from devtools.bench.workload import Message
from samt124.settings import Settings

PRODUCED = re.compile(
    r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
    r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th"
)


@dataclass(frozen=True)
class ProducerPerf:
    records: int
    per_second: float
    mb_per_second: float
    p50_ms: float
    p99_ms: float


@dataclass(frozen=True)
class ConsumerPerf:
    records: int
    per_second: float  # fetch.nMsg.sec: without the group join
    per_second_total: float  # nMsg.sec: from the tool's start


def _java(settings: Settings, tool: str, *args: str, timeout: float) -> str:
    from devtools.local.kafka import jars

    libs = jars(settings)
    command = ["java", "-Xmx512m", "-cp", f"{libs}/*", f"org.apache.kafka.tools.{tool}", *args]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=timeout)
    if result.returncode != 0:
        raise BenchError(f"{tool} exited {result.returncode}: {result.stderr[-2000:]}")
    return result.stdout


def producer_performance(settings: Settings, topic: str, records: int, size: int) -> ProducerPerf:
    """``ProducerPerformance`` with acks=all and no throttle, ``size``-byte records."""
    out = _java(
        settings,
        "ProducerPerformance",
        "--topic",
        topic,
        "--num-records",
        str(records),
        "--record-size",
        str(size),
        "--throughput",
        "-1",
        "--producer-props",
        f"bootstrap.servers={settings.bootstrap}",
        "acks=all",
        timeout=1800,
    )
    found = PRODUCED.findall(out)
    if not found:
        raise BenchError(f"unexpected ProducerPerformance output:\n{out[-2000:]}")
    sent, rate, mb, _avg, _max, p50, _p95, p99 = found[-1]
    return ProducerPerf(int(sent), float(rate), float(mb), float(p50), float(p99))


def consumer_performance(settings: Settings, topic: str, records: int) -> ConsumerPerf:
    """``ConsumerPerformance`` reading ``records`` from the start of ``topic``, run once more
    when it gives up short (on a loaded machine it once stopped 12 records short of 200,000 and
    idled out; the second read measures the same records)."""

    def read() -> ConsumerPerf:
        out = _java(
            settings,
            "ConsumerPerformance",
            "--bootstrap-server",
            settings.bootstrap,
            "--topic",
            topic,
            "--messages",
            str(records),
            "--timeout",
            str(CONSUMER_IDLE_MS),
            timeout=1800,
        )
        return parse_consumer_performance(out, records)

    try:
        return read()
    except ShortRead:
        return read()


CONSUMER_IDLE_MS = 120_000  # the tool gives up after this long without a record


class ShortRead(BenchError):
    """``ConsumerPerformance`` gave up before reading every record."""


def parse_consumer_performance(out: str, records: int) -> ConsumerPerf:
    """The figures of ``ConsumerPerformance``'s summary. The tool prints a ``WARNING:`` line
    between its header and its figures when it gave up early; a short read is an error here,
    since a rate over part of the records is not the figure asked for."""
    lines = [line for line in out.splitlines() if line.strip()]
    header = next((i for i, line in enumerate(lines) if "nMsg.sec" in line), None)
    if header is None:
        raise BenchError(f"unexpected ConsumerPerformance output:\n{out[-2000:]}")
    names = [name.strip() for name in lines[header].split(",")]
    rows = [line.split(",") for line in lines[header + 1 :] if line.count(",") == len(names) - 1]
    if not rows:
        raise BenchError(f"unexpected ConsumerPerformance output:\n{out[-2000:]}")
    values = dict(zip(names, (v.strip() for v in rows[-1]), strict=True))
    consumed = int(float(values["data.consumed.in.nMsg"]))
    if consumed < records:
        warnings = " ".join(line for line in lines if line.startswith("WARNING"))
        raise ShortRead(
            f"ConsumerPerformance read {consumed:,} of {records:,} records. {warnings}".strip()
        )
    return ConsumerPerf(consumed, float(values["fetch.nMsg.sec"]), float(values["nMsg.sec"]))


def fill(settings: Settings, topic: str, messages: list[Message]) -> float:
    """Write ``messages`` to ``topic`` as fast as kafka-python can; return the seconds."""
    from kafka import KafkaProducer

    from producers.publisher import producer_options

    producer = KafkaProducer(**producer_options(settings))
    started = time.monotonic()
    for key, value, headers in messages:
        producer.send(topic, key=key, value=value, headers=headers)
    producer.flush()
    elapsed = time.monotonic() - started
    producer.close()
    return elapsed


def kafka_python_copy(settings: Settings, source: str, target: str, count: int) -> float:
    """Copy ``count`` records from ``source`` to ``target`` (kafka-python); return the seconds
    from the first poll to the last confirmed send."""
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    from producers.publisher import producer_options

    consumer = KafkaConsumer(
        **settings.kafka_client_options(), enable_auto_commit=False, max_poll_records=10_000
    )
    producer = KafkaProducer(**{**producer_options(settings), "linger_ms": 5})
    try:
        partitions = [TopicPartition(source, p) for p in consumer.partitions_for_topic(source)]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        copied = 0
        started = time.monotonic()
        deadline = started + 1800
        while copied < count and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                for record in batch:
                    producer.send(
                        target, key=record.key, value=record.value, headers=record.headers
                    )
                copied += len(batch)
        producer.flush()
        elapsed = time.monotonic() - started
    finally:
        producer.close()
        consumer.close()
    if copied < count:
        raise BenchError(f"kafka-python pass-through copied {copied} of {count}")
    return elapsed


def aiokafka_copy(settings: Settings, source: str, target: str, count: int) -> float:
    """The same copy with aiokafka, the client under Faust."""
    return asyncio.run(_aiokafka_copy(settings, source, target, count))


async def _aiokafka_copy(settings: Settings, source: str, target: str, count: int) -> float:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=settings.bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=512 * 1024,
    )
    await consumer.start()
    await producer.start()
    try:
        copied = 0
        started = time.monotonic()
        deadline = started + 1800
        while copied < count and time.monotonic() < deadline:
            polled = await consumer.getmany(timeout_ms=500, max_records=10_000)
            for batch in polled.values():
                for record in batch:
                    await producer.send(
                        target, value=record.value, key=record.key, headers=list(record.headers)
                    )
                copied += len(batch)
        await producer.flush()
        elapsed = time.monotonic() - started
    finally:
        await producer.stop()
        await consumer.stop()
    if copied < count:
        raise BenchError(f"aiokafka pass-through copied {copied} of {count}")
    return elapsed
