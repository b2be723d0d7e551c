"""The sink from real topics into ClickHouse: killed with SIGKILL mid-run and restarted, and
read by reports on chdb while it writes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest

from consumers.clickhouse.engine import opened
from consumers.clickhouse.migrations import migrate
from producers.simulator import simulate
from samt124.contract.wire import encode, headers, key
from samt124.domain.events import Event
from samt124.kafka.topics import Topics
from samt124.settings import Settings, parse_clickhouse_url

pytestmark = pytest.mark.integration
EVENTS = 8_000


def publish(settings: Settings, events: list[Event]) -> None:
    from kafka import KafkaProducer

    topics = Topics(settings.topic_namespace)
    producer = KafkaProducer(linger_ms=20, **settings.kafka_client_options())
    province: dict[str, str] = {}
    for event in events:
        code = getattr(event, "province", None) or province[event.request_id]
        province.setdefault(event.request_id, code)
        producer.send(topics.province(code), encode(event), key=key(event), headers=headers(event))
    producer.flush()
    producer.close()


def sink(
    settings: Settings, url: str, *extra: str, stderr: int | None = None
) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "samt124.cli",
        "--bootstrap",
        settings.bootstrap,
        "--clickhouse-url",
        url,
        "--namespace",
        settings.topic_namespace,
        "sink",
        "--max-batch",
        "400",
        "--max-wait",
        "0.2",
        *extra,
    ]
    return subprocess.Popen(command, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stderr=stderr)


def stored(url: str, sql: str) -> int:
    target = parse_clickhouse_url(url)
    with opened(target) as engine:
        return int(engine.query(sql.format(db=target.database))[1][0][0])


@pytest.mark.parametrize("engine", ["server", "chdb"])
def test_sink_killed_mid_run_and_restarted_stores_each_event_once(
    request: pytest.FixtureRequest, settings: Settings, engine: str
) -> None:
    url = str(request.getfixturevalue("server_url" if engine == "server" else "chdb_url"))
    target = parse_clickhouse_url(url)
    with opened(target) as db:
        migrate(db)
    events = list(simulate(5, EVENTS, datetime(2024, 9, 1, tzinfo=UTC)))
    publish(settings, events)

    first = sink(settings, url, stderr=subprocess.PIPE)  # a few lines: the pipe never fills
    try:
        deadline = time.monotonic() + 120
        while stored(url, "SELECT count() FROM {db}.events") < EVENTS // 4:
            assert first.poll() is None, "the sink exited early"
            assert time.monotonic() < deadline, "the sink stored nothing"
            time.sleep(0.2)
    finally:
        first.send_signal(signal.SIGKILL)
        _, said = first.communicate()
    assert stored(url, "SELECT count() FROM {db}.events") < EVENTS
    # a new group joins knowing every topic's partitions (once: a warning per topic)
    assert b"No partition metadata" not in said

    second = sink(settings, url, "--until-idle", "4")
    assert second.wait(timeout=300) == 0

    unique = stored(url, "SELECT count() FROM {db}.events_unique")
    distinct = stored(url, "SELECT uniqExact(event_id) FROM {db}.events")
    assert unique == distinct == len(events)


def test_reports_on_chdb_while_the_sink_writes(settings: Settings, chdb_url: str) -> None:
    """chdb lets one process at a time in: a report waits for the sink's batch, and vice versa."""
    with opened(parse_clickhouse_url(chdb_url)) as db:
        migrate(db)
    events = list(simulate(6, 3_000, datetime(2024, 9, 1, tzinfo=UTC)))
    publish(settings, events)
    writer = sink(settings, chdb_url)
    try:
        deadline = time.monotonic() + 120
        while stored(chdb_url, "SELECT count() FROM {db}.events_unique") == 0:
            assert writer.poll() is None, "the sink exited"
            assert time.monotonic() < deadline, "the sink stored nothing"
            time.sleep(0.2)
        for name in ("volume", "durations", "sla"):
            command = [
                sys.executable,
                "-m",
                "samt124.cli",
                "--clickhouse-url",
                chdb_url,
                "report",
                name,
                "--format",
                "json",
            ]
            done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
            assert done.returncode == 0, done.stderr
            assert json.loads(done.stdout), f"{name} printed no rows"
            assert writer.poll() is None, "the sink exited while a report read"
        deadline = time.monotonic() + 120
        while stored(chdb_url, "SELECT count() FROM {db}.events_unique") < len(events):
            assert writer.poll() is None, "the sink exited"
            assert time.monotonic() < deadline, "the sink did not store everything"
            time.sleep(0.5)
    finally:
        writer.send_signal(signal.SIGTERM)
        assert writer.wait(timeout=60) == 0
    assert stored(chdb_url, "SELECT uniqExact(event_id) FROM {db}.events") == len(events)
