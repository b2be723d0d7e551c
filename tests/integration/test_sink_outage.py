"""The sink while ClickHouse is down: it waits, retries with back-off, commits nothing, then
catches up once a server answers, and stores every event exactly once, also across an outage
in the middle of its work.

The events are on the provincial topics first; the server is a second local ClickHouse started
by the test on a free port (nothing listens there at first) and stopped at the end.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from consumers.clickhouse.engine import EngineError, opened
from consumers.sink.loader import group_id
from devtools.local import clickhouse
from producers.simulator import simulate
from samt124.settings import Settings, parse_clickhouse_url
from tests.integration.test_sink import publish

pytestmark = pytest.mark.integration
EVENTS = 1_500


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cli(settings: Settings, url: str, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "samt124.cli",
        "--bootstrap",
        settings.bootstrap,
        "--clickhouse-url",
        url,
        "--namespace",
        settings.topic_namespace,
        *args,
    ]


def committed(settings: Settings) -> dict[tuple[str, int], int]:
    """The sink group's committed offsets per topic-partition."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(**settings.kafka_client_options())
    try:
        group = group_id(settings)
        offsets = admin.list_group_offsets({group: None}).get(group, {})
    finally:
        admin.close()
    return {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()}


def count(url: str, sql: str) -> int:
    target = parse_clickhouse_url(url)
    try:
        with opened(target) as engine:
            return int(engine.query(sql.format(db=target.database))[1][0][0])
    except EngineError:
        return -1


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


@pytest.fixture
def second_server(tmp_path: Path) -> Iterator[Settings]:
    """Settings of a ClickHouse server on free ports, not started; stopped after the test."""
    local = Settings(
        home=tmp_path / "ch",
        local_clickhouse_port=free_port(),
        local_clickhouse_http_port=free_port(),
    )
    yield local
    clickhouse.down(local)


def test_sink_waits_for_clickhouse_then_stores_each_event_once(
    settings: Settings, second_server: Settings, tmp_path: Path
) -> None:
    url = clickhouse.url(second_server).rsplit("/", 1)[0] + "/outage"
    first = list(simulate(21, EVENTS, datetime(2024, 9, 1, tzinfo=UTC)))
    publish(settings, first)
    log = tmp_path / "sink.log"
    command = cli(settings, url, "--verbose", "sink", "--max-batch", "300", "--max-wait", "0.2")
    with log.open("wb") as out:
        sink = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        # 1. Nothing listens: the sink keeps running, backs off, commits nothing.
        wait_for(lambda: len(retries(log)) >= 4, 60, "four retries")
        assert sink.poll() is None, log.read_text()
        delays = retries(log)
        assert delays[:4] == [0.5, 1.0, 2.0, 4.0], delays
        assert committed(settings) == {}

        # 2. A server comes up on that port and gets the schema: the sink catches up.
        clickhouse.up(second_server)
        subprocess.run(cli(settings, url, "init"), check=True, capture_output=True)
        total = "SELECT count() FROM {db}.events_unique"
        wait_for(lambda: count(url, total) == EVENTS, 120, "the sink to catch up")
        wait_for(lambda: sum(committed(settings).values()) == EVENTS, 30, "offsets committed")
        assert sink.poll() is None

        # 3. The server goes away for ~10 s while new events arrive, then comes back.
        clickhouse.down(second_server)
        before = len(retries(log))
        second = list(simulate(22, EVENTS, datetime(2024, 9, 5, tzinfo=UTC)))
        publish(settings, second)
        time.sleep(10)
        assert len(retries(log)) > before, "the sink did not notice the outage"
        assert sum(committed(settings).values()) == EVENTS, "committed while ClickHouse was down"
        assert sink.poll() is None
        clickhouse.up(second_server)
        wait_for(lambda: count(url, total) == 2 * EVENTS, 120, "the sink to catch up again")
        wait_for(lambda: sum(committed(settings).values()) == 2 * EVENTS, 30, "offsets")
    finally:
        sink.send_signal(signal.SIGTERM)
        sink.wait(timeout=60)

    assert count(url, "SELECT uniqExact(event_id) FROM {db}.events") == 2 * EVENTS
    assert count(url, total) == 2 * EVENTS


def retries(log: Path) -> list[float]:
    """The back-off delays the sink announced, in order."""
    text = log.read_text(errors="replace") if log.exists() else ""
    return [float(d) for d in re.findall(r"retrying in ([0-9.]+) s", text)]
