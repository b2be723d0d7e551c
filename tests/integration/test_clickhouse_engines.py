"""Both engines: migrations, identical retries, read-only access, chdb's one-process lock."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from consumers.clickhouse.engine import Engine, EngineBusy, EngineError, connect, opened
from consumers.clickhouse.migrations import available, migrate
from consumers.sink.loader import Message, build_batch, store
from consumers.sink.rows import Position
from producers.simulator import simulate
from samt124.contract.wire import encode
from samt124.domain.calendar import Calendar, load_config
from samt124.domain.events import RequestSubmitted, SlaDeadlinesSet
from samt124.domain.lifecycle import Context, decide
from samt124.domain.routing import load_rules
from samt124.domain.sla import load_policies
from samt124.kafka.topics import Topics
from samt124.settings import parse_clickhouse_url

pytestmark = pytest.mark.integration
TOPICS = Topics("eng")


@pytest.fixture(params=["server", "chdb"])
def url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("server_url" if request.param == "server" else "chdb_url"))


@pytest.fixture
def engine(url: str) -> Iterator[Engine]:
    with opened(parse_clickhouse_url(url, default_database="analytics")) as engine:
        yield engine


def count(engine: Engine, sql: str) -> int:
    return int(engine.query(sql.format(db=engine.database))[1][0][0])


def test_migrations_apply_once_and_in_order(engine: Engine) -> None:
    first = migrate(engine)
    assert [m.version for m in first] == [m.version for m in available()] == [1, 2, 3, 4]
    assert migrate(engine) == []
    assert count(engine, "SELECT count() FROM {db}.schema_migrations") == 4
    _, tables = engine.query(f"SHOW TABLES FROM {engine.database}")
    names = {name for (name,) in tables}
    expected = {"events", "events_unique", "sla_events", "requests", "lag_samples", "sink_errors"}
    expected |= {"sla_deadlines", "sla_deadlines_unique", "dead_letters"}
    assert expected <= names


def test_the_target_database_is_current_once_it_exists(url: str) -> None:
    """Before `init` the database does not exist and the engine still opens; afterwards it is the
    session's current database, so `samt124 sql` takes table names without the prefix."""
    target = parse_clickhouse_url(url, default_database="analytics")
    if target.engine == "server":  # one the fixture has not created
        target = target.model_copy(update={"database": f"{target.database}_later"})
    try:
        with opened(target) as engine:
            [(current,)] = engine.query("SELECT currentDatabase()")[1]
            assert current != target.database
            migrate(engine)
        with opened(target) as engine:
            assert engine.query("SELECT currentDatabase()")[1] == [(target.database,)]
            assert engine.query("SELECT count() FROM events_unique")[1] == [(0,)]
    finally:
        if target.engine == "server":
            with opened(target.model_copy(update={"database": "default"})) as engine:
                engine.execute(f"DROP DATABASE IF EXISTS {target.database}")


def test_a_retried_identical_batch_leaves_no_duplicates(engine: Engine) -> None:
    migrate(engine)
    events = list(simulate(3, 2_000, datetime(2024, 9, 1, tzinfo=UTC)))
    messages = [
        Message(Position(TOPICS.province("IR-30"), 0, i), encode(e)) for i, e in enumerate(events)
    ]
    batch = build_batch(messages, TOPICS, datetime.now(UTC), b"")
    for _ in range(3):
        store(engine, batch)
    later = build_batch(messages[500:], TOPICS, datetime.now(UTC), b"")  # other boundaries
    store(engine, later)
    assert count(engine, "SELECT count() FROM {db}.events_unique") == len(events)
    assert count(engine, "SELECT uniqExact(event_id) FROM {db}.events") == len(events)
    daily = "SELECT sum(n) FROM (SELECT uniqExactMerge(events) AS n FROM {db}.daily_counts)"
    assert count(engine, daily) == len(events)


def test_the_workers_deadlines_are_kept_once_per_fact_and_clock(engine: Engine) -> None:
    migrate(engine)
    context = Context(load_rules(), load_policies(), Calendar(load_config()), datetime.now(UTC))
    facts = [
        fact
        for event in simulate(5, 300, datetime(2024, 9, 1, tzinfo=UTC))
        if isinstance(event, RequestSubmitted)
        for fact in decide(None, event, context).outputs
        if isinstance(fact, SlaDeadlinesSet)
    ]
    messages = [
        Message(Position(TOPICS.province("IR-23"), 0, i), encode(f)) for i, f in enumerate(facts)
    ]
    batch = build_batch(messages, TOPICS, datetime.now(UTC), b"")
    assert batch.events == []  # not lifecycle events: analysts read them in sla_deadlines
    for _ in range(2):
        store(engine, batch)
    store(engine, build_batch(messages[7:], TOPICS, datetime.now(UTC), b""))
    rows = "SELECT count() FROM {db}.sla_deadlines_unique"
    assert count(engine, rows) == 3 * len(facts) > 0  # three clocks each
    running = (
        "SELECT count() FROM {db}.sla_deadlines_unique "
        "WHERE clock = 'RESOLUTION' AND running AND due_ms > 0 AND elapsed_us = 0"
    )
    assert count(engine, running) == len(facts)


def test_undecodable_messages_land_in_sink_errors(engine: Engine) -> None:
    migrate(engine)
    bad = Message(Position(TOPICS.province("IR-01"), 1, 7), b"\x00garbage")
    store(engine, build_batch([bad], TOPICS, datetime.now(UTC), b""))
    _, rows = engine.query(
        f"SELECT topic, partition, offset, raw_hex FROM {engine.database}.sink_errors"
    )
    assert rows == [(TOPICS.province("IR-01"), 1, 7, "00" + b"garbage".hex())]


def test_a_readonly_server_connection_cannot_insert(server_url: str) -> None:
    target = parse_clickhouse_url(server_url)
    with opened(target) as writer:
        migrate(writer)
    with opened(target, readonly=True) as reader:
        assert count(reader, "SELECT count() FROM {db}.events") == 0
        with pytest.raises(EngineError, match="readonly"):
            reader.insert("lag_samples", ("topic",), [("x",)], None)


def test_chdb_directory_is_one_process_at_a_time(
    chdb_url: str, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    target = parse_clickhouse_url(chdb_url)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from chdb.session import Session; "
            f"s = Session({str(target.path)!r}); print('ready', flush=True); time.sleep(3)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(EngineBusy, match="in use by another process"):
            connect(target, lock_timeout=0.5)
        engine = connect(target, lock_timeout=20)  # waits for the holder to let go
        assert engine.query("SELECT 1 AS one") == (["one"], [(1,)])
        engine.close()
    finally:
        holder.wait(timeout=30)
    # chdb's own message for each failed open (every 50 ms) is held back; the wait is said once
    assert "Cannot lock file" not in capfd.readouterr().err
    waits = [r for r in caplog.records if "waiting for the chdb directory" in r.getMessage()]
    assert len(waits) == 1
