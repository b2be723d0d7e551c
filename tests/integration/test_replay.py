"""``samt124 replay``: a real worker and sink fill one database; the log replayed into a second,
empty one, killed with SIGKILL half-way (one process) and started again (two processes sharing
the partitions), gives every report the same figures."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from consumers.analytics.reports import REPORTS, ReportParams, run
from consumers.clickhouse.engine import EngineError, opened
from consumers.sink.replay import log_range
from samt124.settings import Settings, parse_clickhouse_url
from tests.integration.conftest import Services, unique
from tests.integration.pipeline import REPO, Process, env_for, start, wait_for

pytestmark = pytest.mark.integration
EVENTS = 3_000
BY = ("sla", "durations")  # the reports that group by a chosen dimension


@pytest.fixture
def second_url(services: Services) -> Iterator[str]:
    """Another fresh database on the same server, for the replay."""
    from clickhouse_driver import Client

    target = parse_clickhouse_url(services.clickhouse_server)
    database = unique("test_replay_")
    password = target.password.get_secret_value()
    client = Client(target.host, port=target.port, user=target.user, password=password)
    client.execute(f"CREATE DATABASE {database}")
    yield f"clickhouse://{target.user}:{password}@{target.host}:{target.port}/{database}"
    client.execute(f"DROP DATABASE IF EXISTS {database}")
    client.disconnect()


def count(url: str, sql: str) -> int:
    target = parse_clickhouse_url(url)
    with opened(target) as engine:
        return int(engine.query(sql.format(db=target.database))[1][0][0])


def stored_so_far(url: str) -> int:
    """Rows in ``events``; none before the replay has made its tables."""
    try:
        return count(url, "SELECT count() FROM {db}.events")
    except EngineError:
        return 0


def settled(url: str, at_least: int) -> bool:
    """At least ``at_least`` events readable and nothing new for three seconds."""
    before = count(url, "SELECT count() FROM {db}.events_unique")
    if before < at_least:
        return False
    time.sleep(3)
    return count(url, "SELECT count() FROM {db}.events_unique") == before


def replay(settings: Settings, url: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "samt124.cli", "--clickhouse-url", url, "replay", *extra],
        env=env_for(settings),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def reports(url: str, as_of: datetime) -> dict[str, object]:
    tables: dict[str, object] = {}
    with opened(parse_clickhouse_url(url), readonly=True) as engine:
        for name in REPORTS:
            grouped = ("province", "body", "category", "month") if name in BY else ("province",)
            for by in grouped:
                tables[f"{name} by {by}"] = run(engine, name, ReportParams(as_of=as_of, by=by))
    return tables


def test_a_replay_killed_and_resumed_rebuilds_the_live_figures(
    settings: Settings, worker: Process, server_url: str, second_url: str, tmp_path: Path
) -> None:
    live = settings.model_copy(update={"clickhouse_url": server_url})
    done = subprocess.run(
        [sys.executable, "-m", "samt124.cli", "--clickhouse-url", server_url, "init"],
        env=env_for(live),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    simulated = subprocess.run(
        [sys.executable, "-m", "samt124.cli", "simulate", "--count", str(EVENTS), "--quiet"],
        env=env_for(live),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert simulated.returncode == 0, simulated.stderr
    sink = start(live, "--clickhouse-url", server_url, "sink", log=tmp_path / "sink.log")
    try:
        wait_for(lambda: settled(server_url, EVENTS), 300, "the live pipeline to settle", every=1)
        worker.stop()  # the log stops growing; the sink stores what the worker wrote last
        wait_for(lambda: settled(server_url, EVENTS), 120, "the sink to settle", every=1)
    finally:
        worker.stop()
        assert sink.stop() == 0, sink.output()[-2000:]
    where = log_range(live)
    live_rows = count(server_url, "SELECT count() FROM {db}.events_unique")
    assert where.messages >= live_rows >= EVENTS

    # small batches, so that the kill lands in the middle; one process, then two
    first = replay(live, second_url, "--max-batch", "500", "--jobs", "1")
    try:
        wait_for(
            lambda: stored_so_far(second_url) >= where.messages // 3,
            300,
            "the replay to store a third of the log",
            every=0.2,
        )
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    stopped_at = count(second_url, "SELECT count() FROM {db}.events")
    assert stopped_at < where.messages, "the replay finished before it was killed"

    second = replay(live, second_url, "--max-batch", "500", "--jobs", "2")
    out, err = second.communicate(timeout=600)
    assert second.returncode == 0, err
    assert "going on from" in err  # it resumed, not started over
    assert "with 2 processes" in err
    assert "ETA" in err  # progress with an estimate
    assert f"check: all {where.messages:,} messages of the log are in ClickHouse" in out

    assert count(second_url, "SELECT count() FROM {db}.events_unique") == live_rows
    assert count(second_url, "SELECT count() FROM {db}.sla_events_unique") == count(
        server_url, "SELECT count() FROM {db}.sla_events_unique"
    )
    as_of = datetime.now(UTC)
    assert reports(second_url, as_of) == reports(server_url, as_of)


def test_replay_refuses_a_database_that_holds_data(
    settings: Settings, server_url: str, second_url: str
) -> None:
    from consumers.clickhouse.migrations import migrate
    from samt124.kafka.admin import ensure_topics

    ensure_topics(settings)
    target = parse_clickhouse_url(server_url)
    with opened(target) as engine:
        migrate(engine)
        engine.insert("events", ("event_id", "event_type"), [("e-1", "RequestClosed")], None)
    refused = replay(settings, server_url)
    _, err = refused.communicate(timeout=120)
    assert refused.returncode == 1
    assert "already holds 1 events and no replay into it was started" in err
    assert "give --clickhouse-url a new database" in err
