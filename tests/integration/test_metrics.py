"""The worker's and the sink's Prometheus endpoints, scraped while they run on the real broker
and ClickHouse server, against what the test published and what ClickHouse holds."""

from __future__ import annotations

import socket
import urllib.request
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from consumers.clickhouse.engine import opened
from consumers.clickhouse.migrations import migrate
from samt124.contract import wire
from samt124.kafka.admin import ensure_topics
from samt124.kafka.topics import Topics
from samt124.settings import Settings, parse_clickhouse_url
from streams.app import DUE_PER_LOOK
from tests.integration.pipeline import produce_raw, start, submission, wait_for

pytestmark = pytest.mark.integration
REQUESTS = 40


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the endpoint, by name and labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape_when_up(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """As :func:`scrape`; nothing while the endpoint does not answer yet."""
    try:
        return scrape(port)
    except OSError:  # urllib's URLError included
        return {}


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_worker_and_sink_metrics_count_what_was_published_and_stored(
    settings: Settings, server_url: str, tmp_path: Path
) -> None:
    topics = Topics(settings.topic_namespace)
    target = parse_clickhouse_url(server_url)
    with opened(target) as engine:
        migrate(engine)
    ensure_topics(settings)
    worker_port, sink_port = free_port(), free_port()
    worker = start(
        settings, "worker", "--metrics", f"127.0.0.1:{worker_port}", log=tmp_path / "worker.log"
    )
    sink = start(
        settings,
        "sink",
        "--max-wait",
        "0.2",
        log=tmp_path / "sink.log",
        SAMT124_CLICKHOUSE_URL=server_url,
        SAMT124_METRICS_PORT=str(sink_port),
    )
    try:
        good = [submission(province="IR-30") for _ in range(REQUESTS)]
        invalid = replace(submission(), province="IR-99")
        messages: list[tuple[bytes | None, bytes]] = [(wire.key(e), wire.encode(e)) for e in good]
        messages += [(b"junk", b"\x00\xffnot avro"), (b"junk2", b"\xc3\x01??")]
        messages.append((wire.key(invalid), wire.encode(invalid)))
        produce_raw(settings, topics.intake, messages)
        published = len(messages)

        def stored_all() -> bool:
            with opened(target) as engine:
                db = target.database
                events = engine.query(f"SELECT count() FROM {db}.events_unique")[1][0][0]
                dead = engine.query(f"SELECT count() FROM {db}.dead_letters FINAL")[1][0][0]
            return int(events) == 2 * REQUESTS and int(dead) == 3  # referral + submission each

        wait_for(stored_all, 180, "every event and dead letter in ClickHouse")
        w = wait_for(
            lambda: (
                (s := scrape(worker_port))
                and value(s, "samt124_worker_intake_messages_total") == published
                and value(s, "samt124_worker_open_requests") == REQUESTS  # set after the batch
                and s
            ),
            30,
            "the worker's counters",
        )
        assert value(w, "samt124_worker_routed_total") == REQUESTS
        assert value(w, "samt124_worker_dead_letters_total", reason_kind="undecodable") == 2
        assert value(w, "samt124_worker_dead_letters_total", reason_kind="invalid") == 1
        assert value(w, "samt124_worker_duplicates_total") == 0
        assert value(w, "samt124_worker_open_requests") == REQUESTS
        assert value(w, "samt124_worker_overdue_requests") == 0
        assert value(w, "samt124_worker_batch_messages_sum", agent="route") == published
        assert value(w, "samt124_worker_batch_duration_seconds_count", agent="route") >= 1
        assert value(w, "samt124_worker_last_intake_timestamp_seconds") > 0

        # the clocks' deadlines may come in a batch after the events: counted once it is stored
        s = wait_for(
            lambda: (
                (s := scrape(sink_port))
                and value(s, "samt124_sink_messages_total") >= 3 * REQUESTS + 3
                and s
            ),
            60,
            "the sink's counters",
        )
        assert value(s, "samt124_sink_rows_stored_total", table="events") == 2 * REQUESTS
        assert value(s, "samt124_sink_rows_stored_total", table="dead_letters") == 3
        assert value(s, "samt124_sink_rows_stored_total", table="sla_events") == 0
        # per request its referral, its submission and its clocks' deadlines; three dead letters
        assert value(s, "samt124_sink_messages_total") == 3 * REQUESTS + 3
        assert value(s, "samt124_sink_batch_messages_sum") == 3 * REQUESTS + 3
        assert value(s, "samt124_sink_rows_stored_total", table="sla_deadlines") >= REQUESTS
        batches = value(s, "samt124_sink_batches_total")
        assert batches >= 1
        assert value(s, "samt124_sink_insert_duration_seconds_count") == batches
        assert value(s, "samt124_sink_errors_total", kind="clickhouse") == 0
        assert value(s, "samt124_sink_retries_total") == 0
        assert value(s, "samt124_sink_last_batch_timestamp_seconds") > 0
    finally:
        sink.stop()
        worker.stop()


def test_a_metrics_port_in_use_is_a_runtime_failure_with_what_to_do(
    settings: Settings, server_url: str, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ensure_topics(settings)
        sink = start(
            settings,
            "sink",
            "--metrics",
            f"127.0.0.1:{port}",
            log=tmp_path / "sink.log",
            SAMT124_CLICKHOUSE_URL=server_url,
        )
        assert sink.popen.wait(timeout=60) == 1
    said = sink.output()
    assert f"cannot serve the sink's metrics on 127.0.0.1:{port}" in said
    assert "--metrics" in said
    assert "Traceback" not in said


BACKLOG = 2_000


def test_a_backlog_of_past_deadlines_is_worked_through_in_short_timer_passes(
    settings: Settings, tmp_path: Path
) -> None:
    """Requests submitted two months ago reach the worker all at once, every deadline of theirs
    long past: the SLA timer works through them in many passes, each short enough that an intake
    batch waiting for the writer lock is never held up for long (a pass once took 1,000 requests
    and held the lock for up to 1.7 s)."""
    from producers.publisher import Publisher

    ensure_topics(settings)
    long_ago = datetime.now(UTC) - timedelta(days=60)
    with Publisher(settings) as publisher:
        publisher.publish_many([submission(at=long_ago) for _ in range(BACKLOG)])
    port = free_port()
    worker = start(settings, "worker", "--metrics", f"127.0.0.1:{port}", log=tmp_path / "w.log")
    try:
        w = wait_for(
            lambda: (
                (s := scrape_when_up(port))
                and value(
                    s, "samt124_worker_sla_facts_total", kind="SlaBreached", clock="RESOLUTION"
                )
                == BACKLOG
                and s
            ),
            240,
            "a resolution breach of every request",
        )
    finally:
        worker.stop()
    assert value(
        w, "samt124_worker_sla_facts_total", kind="SlaBreached", clock="FIRST_RESPONSE"
    ) == (BACKLOG)
    passes = value(w, "samt124_worker_batch_duration_seconds_count", agent="timer")
    assert passes >= BACKLOG / DUE_PER_LOOK
    # every pass (its share of the requests, the delivery of their facts, the states saved)
    # within half a second, the lock held meanwhile
    short = value(w, "samt124_worker_batch_duration_seconds_bucket", agent="timer", le="0.5")
    assert short == passes
