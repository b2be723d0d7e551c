"""Consumer lag against the real broker, checked against Kafka's own kafka-consumer-groups."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.structs import OffsetAndMetadata
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from consumers.lag.reader import LagReader
from devtools.local.kafka import jars
from samt124 import cli
from samt124.settings import Settings

PER_PARTITION = 10
CONSUMED = {0: 4, 1: 7}  # committed offset per partition: lag 6 and 3
AGE = 600.0  # seconds: how old the produced messages are


@dataclass(frozen=True)
class Scene:
    topic: str
    group: str
    consumer: KafkaConsumer
    produced_at: float  # timestamp of offset 0; offset i is i seconds later


@pytest.fixture
def scene(settings: Settings) -> Iterator[Scene]:
    """Two partitions of 10 messages each; a live group member committed 4 and 7, then idles."""
    topic = f"{settings.topic_namespace}.lag"
    group = f"{settings.topic_namespace}-lagtest"
    admin = KafkaAdminClient(**settings.kafka_client_options())
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    admin.close()
    produced_at = time.time() - AGE
    producer = KafkaProducer(**settings.kafka_client_options(), acks="all")
    for partition in CONSUMED:
        for offset in range(PER_PARTITION):
            stamp = int((produced_at + offset) * 1000)
            producer.send(topic, value=b"m", partition=partition, timestamp_ms=stamp)
    producer.flush()
    producer.close()
    consumer = KafkaConsumer(
        topic,
        **settings.kafka_client_options(),
        group_id=group,
        client_id="lag-test-client",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    deadline = time.monotonic() + 30
    while not consumer.assignment() and time.monotonic() < deadline:
        consumer.poll(timeout_ms=200)
    assert len(consumer.assignment()) == 2
    consumer.commit(
        {
            TopicPartition(topic, partition): OffsetAndMetadata(offset, "", -1)
            for partition, offset in CONSUMED.items()
        }
    )
    yield Scene(topic, group, consumer, produced_at)
    consumer.close()


def consumer_groups_tool(settings: Settings, group: str) -> list[dict[str, str]]:
    """Kafka's ConsumerGroupCommand --describe, its table parsed into rows."""
    result = subprocess.run(
        [
            "java",
            "-cp",
            f"{jars(settings)}/*",
            "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
            "--bootstrap-server",
            settings.bootstrap,
            "--describe",
            "--group",
            group,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    lines = [line.split() for line in result.stdout.splitlines() if line.strip()]
    header = next(line for line in lines if line[0] == "GROUP")
    return [dict(zip(header, line, strict=True)) for line in lines if line[0] == group]


def run_cli(settings: Settings, *args: str) -> int:
    base = ["--bootstrap", settings.bootstrap, "--namespace", settings.topic_namespace]
    return cli.main([*base, "lag", *args])


def test_offsets_and_lag_match_kafka_consumer_groups(settings: Settings, scene: Scene) -> None:
    with LagReader(settings) as reader:
        [reading] = reader.read([scene.group])
    ours = {
        (p.topic, str(p.partition)): (
            str(p.committed),
            str(p.log_end),
            str(p.lag),
            p.member.consumer_id if p.member else "-",
            p.member.host if p.member else "-",
            p.member.client_id if p.member else "-",
        )
        for p in reading.partitions
    }
    theirs = {
        (row["TOPIC"], row["PARTITION"]): (
            row["CURRENT-OFFSET"],
            row["LOG-END-OFFSET"],
            row["LAG"],
            row["CONSUMER-ID"],
            row["HOST"],
            row["CLIENT-ID"],
        )
        for row in consumer_groups_tool(settings, scene.group)
    }
    assert ours == theirs
    assert ours[(scene.topic, "0")][:3] == ("4", "10", "6")
    assert reading.state == "Stable"


def test_lag_in_seconds_is_the_age_of_the_oldest_unconsumed_message(
    settings: Settings, scene: Scene
) -> None:
    with LagReader(settings) as reader:
        [reading] = reader.read([scene.group])
    for partition in reading.partitions:
        oldest_unconsumed = scene.produced_at + CONSUMED[partition.partition]
        expected = reading.at - oldest_unconsumed
        assert partition.lag_seconds is not None
        assert partition.lag_seconds == pytest.approx(expected, abs=1.0)
        assert partition.lag_seconds > AGE - PER_PARTITION


def test_stuck_member_is_stall_and_stopped_consumer_is_stop(
    settings: Settings, scene: Scene, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(settings, "--json", "--window", "3") == 3
    report = json.loads(capsys.readouterr().out)
    [group] = report["groups"]
    assert (group["group"], group["status"], group["sum_lag"]) == (scene.group, "STALL", 9)
    assert group["max_lag_seconds"] > AGE - PER_PARTITION

    scene.consumer.close()  # nobody commits any more
    assert run_cli(settings, "--group", scene.group, "--window", "3") == 3
    table = capsys.readouterr().out
    assert f"GROUP {scene.group}  STATUS STOP  state Empty" in table
    assert "LAG-SECONDS" in table.splitlines()[0]


def test_caught_up_group_is_ok(settings: Settings, scene: Scene) -> None:
    scene.consumer.commit(
        {
            TopicPartition(scene.topic, partition): OffsetAndMetadata(PER_PARTITION, "", -1)
            for partition in CONSUMED
        }
    )
    assert run_cli(settings, "--window", "2") == 0


def test_missing_group_is_err(settings: Settings) -> None:
    assert run_cli(settings, "--group", f"{settings.topic_namespace}-nobody", "--window", "1") == 3


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_prometheus_endpoint_uses_kafka_lag_exporters_names(
    settings: Settings, scene: Scene
) -> None:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "samt124.cli",
        "--bootstrap",
        settings.bootstrap,
        "--namespace",
        settings.topic_namespace,
        "lag",
        "--serve",
        f"127.0.0.1:{port}",
        "--watch",
        "1",
        "--window",
        "2",
        "--cluster-name",
        "test",
    ]
    exporter = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        families = scrape_until(f"http://127.0.0.1:{port}/metrics", "kafka_consumergroup_group_lag")
    finally:
        exporter.terminate()
        exporter.wait(timeout=30)
    lag = {
        sample.labels["partition"]: sample
        for sample in families["kafka_consumergroup_group_lag"].samples
    }
    assert {p: s.value for p, s in lag.items()} == {"0": 6.0, "1": 3.0}
    assert lag["0"].labels == {
        "cluster_name": "test",
        "group": scene.group,
        "topic": scene.topic,
        "partition": "0",
        "member_host": lag["0"].labels["member_host"],
        "consumer_id": lag["0"].labels["consumer_id"],
        "client_id": "lag-test-client",
    }
    assert lag["0"].labels["consumer_id"].startswith("lag-test-client-")
    group_values = {
        name: {s.labels["group"]: s.value for s in families[name].samples}
        for name in (
            "kafka_consumergroup_group_max_lag",
            "kafka_consumergroup_group_sum_lag",
            "kafka_consumergroup_group_max_lag_seconds",
        )
    }
    assert group_values["kafka_consumergroup_group_max_lag"] == {scene.group: 6.0}
    assert group_values["kafka_consumergroup_group_sum_lag"] == {scene.group: 9.0}
    assert group_values["kafka_consumergroup_group_max_lag_seconds"][scene.group] > AGE - 10
    seconds = families["kafka_consumergroup_group_lag_seconds"].samples
    assert {s.labels["partition"] for s in seconds} == {"0", "1"}
    latest = {
        (s.labels["topic"], s.labels["partition"]): s.value
        for s in families["kafka_partition_latest_offset"].samples
    }
    assert latest == {(scene.topic, "0"): 10.0, (scene.topic, "1"): 10.0}
    statuses = {
        s.labels["status"]: s.value for s in families["samt124_consumergroup_status"].samples
    }
    assert sum(statuses.values()) == 1.0
    assert set(statuses) == {"OK", "WARN", "REWIND", "STALL", "STOP", "ERR"}


def scrape_until(url: str, wanted: str, timeout: float = 60.0) -> dict[str, Metric]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                text = response.read().decode()
            families = {family.name: family for family in text_string_to_metric_families(text)}
            if families.get(wanted) and families[wanted].samples:
                return families
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} never showed {wanted}")
        time.sleep(0.5)


def test_record_writes_samples_to_clickhouse(
    settings: Settings, scene: Scene, server_url: str
) -> None:
    from consumers.clickhouse.engine import opened
    from consumers.clickhouse.migrations import migrate

    target = settings.model_copy(update={"clickhouse_url": server_url}).clickhouse
    with opened(target) as engine:
        migrate(engine)
    base = ["--bootstrap", settings.bootstrap, "--namespace", settings.topic_namespace]
    argv = [*base, "--clickhouse-url", server_url, "lag", "--record", "--window", "1"]
    assert cli.main(argv) == 3  # a live member that does not commit: STALL
    with opened(target) as engine:
        _, rows = engine.query(
            f"SELECT partition, committed, end, lag, status FROM {engine.database}.lag_samples"
        )
    assert len(rows) >= 4  # two partitions, sampled at least twice to fill the window
    assert {row[:4] for row in rows} == {(0, 4, 10, 6), (1, 7, 10, 3)}
    assert {row[4] for row in rows} == {"OK", "STALL"}  # OK until the window was filled
