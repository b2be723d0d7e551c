"""The analytics schema on a ClickHouse cluster (`samt124 init --cluster`): servers from
Debian's package, ZooKeeper from Debian's package; one shard of two replicas, and two shards of
two replicas each.

The same events, each batch stored twice as a retrying sink would, give the same reports on
either cluster as on one server, and each event is counted once on every replica; on two
shards, each request's rows are on the shard ``sipHash64(request_id)`` names, and both shards
hold some. The sink, pointed at both replicas, goes on loading on the second while the first is
SIGKILLed for 30 s, a batch cut in the middle by the kill included; the first comes back in
step, and every event is there exactly once on each."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from consumers.analytics.reports import REPORTS, ReportParams, run
from consumers.clickhouse.engine import Engine, EngineError, opened
from consumers.clickhouse.migrations import migrate
from consumers.sink.loader import Message, Sink, build_batch, store
from consumers.sink.rows import EVENT_COLUMNS, Position
from devtools.local import clickhouse_cluster
from samt124.cli import main
from samt124.contract.wire import encode, headers, key
from samt124.domain.events import SLA_EVENT_TYPES, Event
from samt124.kafka.admin import ensure_topics
from samt124.kafka.topics import Topics
from samt124.settings import Settings, parse_clickhouse_url
from tests.integration.conftest import Services, unique
from tests.integration.pipeline import wait_for
from tests.integration.test_reports import AS_OF, TOPICS, dataset

pytestmark = pytest.mark.integration
PORT = 21400  # servers on 21400 and 21410 (HTTP 21423, 21433), ZooKeeper on 21481
SHARDED_PORT = 21500  # two shards of two: 21500 and 21510, 21520 and 21530; ZooKeeper on 21581
OUTAGE_S = float(os.environ.get("SAMT124_CLUSTER_OUTAGE_S", "30"))
# inserted blocks a replicated table dropped as already stored (on any replica of its shard)
DUPLICATE_BLOCKS = "SELECT sum(value) FROM system.events WHERE event = 'DuplicatedInsertedBlocks'"
BYS = {"sla": ("province", "body", "category", "month"), "durations": ("province", "body")}


def _local_cluster(home: Path, cache: Path, port: int, shards: int) -> Iterator[Settings]:
    """A local cluster of ``shards`` shards of two replicas from ``port`` on, up while used."""
    local = Settings(
        home=home,
        cache=cache,
        local_clickhouse_port=port,
        local_clickhouse_http_port=port + 23,
        local_zookeeper_port=port + 81,
        local_clickhouse_replicas=2,
        local_clickhouse_shards=shards,
    )
    try:
        clickhouse_cluster.up(local)
        yield local
    finally:
        clickhouse_cluster.down(local)


@pytest.fixture(scope="module")
def cluster(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    home = tmp_path_factory.mktemp("chcluster") / "home"
    yield from _local_cluster(home, services.base.cache, PORT, shards=1)


@pytest.fixture(scope="module")
def sharded(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    home = tmp_path_factory.mktemp("chshards") / "home"
    yield from _local_cluster(home, services.base.cache, SHARDED_PORT, shards=2)


@pytest.fixture(scope="module")
def events() -> list[Event]:
    return dataset()


def _messages(events: list[Event]) -> list[Message]:
    return [
        Message(Position(TOPICS.province("IR-30"), i % 3, i), encode(event))
        for i, event in enumerate(events)
    ]


def _load(engine: Engine, events: list[Event]) -> None:
    messages = _messages(events)
    for start in range(0, len(messages), 1_000):
        batch = build_batch(messages[start : start + 1_000], TOPICS, AS_OF, b"key")
        store(engine, batch)
        store(engine, batch)  # a retried identical batch


def _node_url(cluster: Settings, number: int, database: str) -> str:
    node = clickhouse_cluster.nodes(cluster)[number - 1]
    return node.url(database)


def _all_reports(engine: Engine) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in REPORTS:
        for by in BYS.get(name, ("province",)):
            out[f"{name} by {by}"] = run(engine, name, ReportParams(as_of=AS_OF, by=by))
    return out


def _count(url: str, sql: str) -> int:
    target = parse_clickhouse_url(url)
    with opened(target) as engine:
        return int(engine.query(sql.format(db=target.database))[1][0][0])


def test_init_cluster_creates_replicated_and_distributed_tables(
    cluster: Settings, services: Services, capsys: pytest.CaptureFixture[Any]
) -> None:
    database = unique("cl_")
    url = _node_url(cluster, 1, database)
    code = main(
        [
            "--bootstrap",
            services.base.bootstrap,
            "--namespace",
            unique("t"),
            "--clickhouse-url",
            url,
            "init",
            "--cluster",
            clickhouse_cluster.CLUSTER,
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert f"on cluster {clickhouse_cluster.CLUSTER}" in capsys.readouterr().out
    for number in (1, 2):  # every node has the whole schema
        target = parse_clickhouse_url(_node_url(cluster, number, database))
        with opened(target) as engine:
            _, rows = engine.query(
                f"SELECT name, engine FROM system.tables WHERE database = '{database}'"
            )
        engines: dict[str, str] = {str(name): str(kind) for name, kind in rows}
        assert engines["events_local"] == "ReplicatedReplacingMergeTree"
        assert engines["events"] == "Distributed"
        assert engines["sla_events_local"] == "ReplicatedReplacingMergeTree"
        assert engines["daily_counts_local"] == "ReplicatedAggregatingMergeTree"
        # one row per event on each shard, the shards' answers put together
        assert engines["events_unique_local"] == "View"
        assert engines["events_unique"] == "Distributed"
        assert engines["requests"] == "View"


def test_init_cluster_on_the_embedded_engine_is_a_usage_mistake(
    capsys: pytest.CaptureFixture[Any], tmp_path: Path
) -> None:
    code = main(["--clickhouse-url", f"chdb://{tmp_path / 'chdb'}", "init", "--cluster", "samt124"])
    assert code == 2
    assert "a ClickHouse cluster needs a server" in capsys.readouterr().err


def test_the_same_reports_on_one_server_and_on_the_cluster(
    cluster: Settings, sharded: Settings, server_url: str, events: list[Event]
) -> None:
    single = parse_clickhouse_url(server_url)
    database = unique("cl_")
    on_cluster = parse_clickhouse_url(_node_url(cluster, 1, database)).model_copy(
        update={"cluster": clickhouse_cluster.CLUSTER}
    )
    with opened(single) as engine:
        migrate(engine)
        _load(engine, events)
        expected = _all_reports(engine)
    with opened(on_cluster) as engine:
        migrate(engine, cluster=clickhouse_cluster.CLUSTER)
        _load(engine, events)
        got = _all_reports(engine)
    assert got == expected
    assert sum(len(rows) for _, rows in got.values()) > 100
    ids = len({event.event_id for event in events})
    for number in (1, 2):  # each replica: every event once as analysts read it
        url = _node_url(cluster, number, database)

        def in_step(u: str = url) -> bool:
            return _count(u, "SELECT count() FROM {db}.events_local") >= ids

        wait_for(
            in_step,
            60,
            f"replica {number} in step",
        )
        assert _count(url, "SELECT count() FROM {db}.events_unique") == ids
        assert _count(url, "SELECT uniqExact(event_id) FROM {db}.events_local") == ids
    _check_on_shards(sharded, events, expected)


def _check_on_shards(sharded: Settings, events: list[Event], expected: dict[str, Any]) -> None:
    """Two shards of two replicas: the same reports; each request's rows on the shard its
    ``sipHash64(request_id)`` names (the Distributed tables' key, modulo two shards of weight
    one), on both of its replicas once; both shards hold some; every event and SLA fact counted
    once through the ``_unique`` tables from any server."""
    database = unique("cl_")
    every = clickhouse_cluster.nodes(sharded)
    assert [node.shard for node in every] == [1, 1, 2, 2]
    on_shards = parse_clickhouse_url(every[0].url(database)).model_copy(
        update={"cluster": clickhouse_cluster.CLUSTER}
    )
    ids = len({event.event_id for event in events})
    sla = len({e.event_id for e in events if type(e).__name__ in SLA_EVENT_TYPES})
    rows = "SELECT count() FROM {db}.events_local"
    sla_rows = "SELECT count() FROM {db}.sla_events_local"

    def in_step() -> bool:  # each shard's replicas have fetched what the other one stored
        pairs = (every[:2], every[2:])
        return all(
            sum(min(_count(n.url(database), sql) for n in pair) for pair in pairs) >= total
            for sql, total in ((rows, ids), (sla_rows, sla))
        )

    with opened(on_shards) as engine:
        migrate(engine, cluster=clickhouse_cluster.CLUSTER)
        _load(engine, events)
        # a read takes one replica of each shard: it sees what that replica has fetched
        wait_for(in_step, 60, "the replicas of both shards in step")
        assert _all_reports(engine) == expected
    held: dict[int, int] = {}
    for node in every:
        url = node.url(database)
        stored = _count(url, "SELECT uniqExact(event_id) FROM {db}.events_local")
        assert held.setdefault(node.shard, stored) == stored  # both replicas alike
        assert _count(url, rows) == stored  # each event once
        shard = node.shard - 1
        elsewhere = f"SELECT countIf(sipHash64(request_id) % 2 != {shard}) FROM {{db}}.events_local"
        assert _count(url, elsewhere) == 0
        assert _count(url, "SELECT count() FROM {db}.events_unique") == ids
        assert _count(url, "SELECT count() FROM {db}.sla_events_unique") == sla
    assert sum(held.values()) == ids
    assert min(held.values()) > ids // 3  # spread over both shards


def test_local_up_and_status_name_each_server_and_its_shard(
    sharded: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in {
        "SAMT124_HOME": sharded.home,
        "SAMT124_CACHE": sharded.cache,
        "SAMT124_LOCAL_CLICKHOUSE_PORT": SHARDED_PORT,
        "SAMT124_LOCAL_CLICKHOUSE_HTTP_PORT": SHARDED_PORT + 23,
        "SAMT124_LOCAL_ZOOKEEPER_PORT": SHARDED_PORT + 81,
    }.items():
        monkeypatch.setenv(name, str(value))
    layout = ["--clickhouse-shards", "2", "--clickhouse-replicas", "2", "clickhouse"]
    assert main(["local", "up", *layout]) == 0  # finds them running
    up = capsys.readouterr().out
    assert main(["local", "status"]) == 0
    status = capsys.readouterr().out
    for number, port, shard in ((1, 0, 1), (2, 10, 1), (3, 20, 2), (4, 30, 2)):
        where = f"127.0.0.1:{SHARDED_PORT + port}/samt124  shard {shard:02d}"
        assert f"clickhouse-{number} running  pid " in up
        assert where in up
        assert f"clickhouse-{number} running  pid " in status
        assert where in status
    assert main(["local", "up", "--clickhouse-shards", "3", "clickhouse"]) != 0  # one replica each
    assert "made with 4 servers in 2 shard(s), not 3 in 3" in capsys.readouterr().err


def test_an_insert_quorum_has_both_replicas_of_each_shard_store_a_batch_before_it_returns(
    sharded: Settings, events: list[Event]
) -> None:
    """With ``SAMT124_CLICKHOUSE_INSERT_QUORUM=2`` a batch returns once both replicas of each
    shard have it: read straight after, every server holds its shard's rows. A quorum larger
    than a shard's replicas is refused by the server: the setting reaches it."""
    database = unique("cl_")
    every = clickhouse_cluster.nodes(sharded)
    url = ",".join(f"127.0.0.1:{node.port}" for node in every)
    settings = Settings(
        clickhouse_url=f"clickhouse://default:@{url}/{database}",
        clickhouse_cluster=clickhouse_cluster.CLUSTER,
        clickhouse_insert_quorum=2,
    )
    batch = build_batch(_messages(events[:500]), TOPICS, AS_OF, b"key")
    with opened(settings.clickhouse) as engine:
        migrate(engine, cluster=clickhouse_cluster.CLUSTER)
        store(engine, batch)
    ids = len({row[0] for row in batch.events})
    counts = [_count(node.url(database), "SELECT count() FROM {db}.events_local") for node in every]
    assert (counts[1], counts[3]) == (counts[0], counts[2])  # no waiting for replication
    assert counts[0] + counts[2] == ids
    assert min(counts) > 0
    three = settings.clickhouse.model_copy(update={"insert_quorum": 3})
    with opened(three) as engine, pytest.raises(EngineError, match="quorum"):
        store(engine, build_batch(_messages(events[500:600]), TOPICS, AS_OF, b"key"))


def _publish(producer: Any, sends: list[tuple[str, bytes, bytes, Any]]) -> None:
    for topic, value, event_key, event_headers in sends:
        producer.send(topic, value, key=event_key, headers=event_headers)
    producer.flush()


def _sends(settings: Settings, events: list[Event]) -> list[tuple[str, bytes, bytes, Any]]:
    """Each event as a message on its province's topic, as the worker routes it."""
    topics = Topics(settings.topic_namespace)
    province: dict[str, str] = {}
    out = []
    for event in events:
        code = getattr(event, "province", None) or province[event.request_id]
        province.setdefault(event.request_id, code)
        out.append((topics.province(code), encode(event), key(event), headers(event)))
    return out


def test_the_sink_goes_on_on_the_other_replica_and_every_event_is_there_once(
    cluster: Settings, services: Services, events: list[Event], tmp_path: Path
) -> None:
    """The sink and a reader name both replicas, the one that is SIGKILLed first. One batch is
    cut in the middle: its events were stored by the first replica before it died, and the
    whole batch is then stored again, on the second. The sink loads on the second replica for
    the whole outage; the first catches up after its restart, and each replica holds every
    event and every SLA fact once."""
    database = unique("cl_")
    first, second = clickhouse_cluster.nodes(cluster)
    url = f"clickhouse://default:@127.0.0.1:{first.port},127.0.0.1:{second.port}/{database}"
    settings = Settings(
        home=tmp_path / "home",
        cache=services.base.cache,
        kafka_bootstrap=services.base.bootstrap,
        topic_namespace=unique("t"),
        partitions=2,
        clickhouse_url=url,
        clickhouse_cluster=clickhouse_cluster.CLUSTER,
    )
    replicas = settings.clickhouse
    assert replicas.addresses == [("127.0.0.1", first.port), ("127.0.0.1", second.port)]
    on_first = parse_clickhouse_url(first.url(database)).model_copy(
        update={"cluster": clickhouse_cluster.CLUSTER}
    )
    with opened(on_first) as engine:
        migrate(engine, cluster=clickhouse_cluster.CLUSTER)
    ensure_topics(settings)
    # a third before the kill, one batch cut by it, half the rest during the outage, the rest after
    third = len(events) // 3
    half = (len(events) + third + 250) // 2
    cut_batch = build_batch(_messages(events[third : third + 250]), TOPICS, AS_OF, b"key")
    sends = _sends(settings, events)
    before, during, after = sends[:third], sends[third + 250 : half], sends[half:]
    sink = Sink(settings, max_batch=250, max_wait=0.2)
    total = len(before) + len(during) + len(after)
    failed: list[BaseException] = []

    def load() -> None:
        try:
            sink.run(until=lambda _: sink.stats.messages >= total)
        except BaseException as error:  # said by the test below
            failed.append(error)

    from kafka import KafkaProducer

    producer = KafkaProducer(linger_ms=20, **settings.kafka_client_options())
    loading = threading.Thread(target=load, daemon=True)
    loading.start()
    try:
        _publish(producer, before)
        wait_for(lambda: sink.stats.messages >= len(before), 90, "the first third stored")
        with opened(on_first) as engine:  # the cut batch's events reach the first replica only
            engine.insert("events", EVENT_COLUMNS, cut_batch.events, f"events:{cut_batch.token}")
        pid = first.pid
        assert pid is not None
        os.killpg(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        dropped = _count(second.url(database), DUPLICATE_BLOCKS)
        with opened(replicas) as engine:  # the whole batch again, on the second replica
            store(engine, cut_batch)
        # its events are known to the second replica as stored (ZooKeeper has their block ids)
        assert _count(second.url(database), DUPLICATE_BLOCKS) > dropped
        chunks = [during[start : start + 100] for start in range(0, len(during), 100)]
        for number, chunk in enumerate(chunks):  # the sink loads while the replica is away
            _publish(producer, chunk)
            time.sleep(
                max(0.0, killed_at + OUTAGE_S * (number + 1) / len(chunks) - time.monotonic())
            )
        stored = len(before) + len(during)
        wait_for(lambda: sink.stats.messages >= stored, 60, "the outage's events stored")
        assert first.pid is None, "the first replica is still away"
        loaded = {e.event_id for e in events[:third]} | {
            e.event_id for e in events[third + 250 : half]
        }
        # a reader naming both replicas reads the second: everything the sink stored is there
        assert _count(url, "SELECT count() FROM {db}.events_unique") >= len(loaded)
        clickhouse_cluster.start_node(cluster, first)
        back_at = time.monotonic()
        _publish(producer, after)
        loading.join(120)
    finally:
        producer.close()
        sink.stop()
        loading.join(30)
    assert not failed, failed
    assert not loading.is_alive()
    ids = len({event.event_id for event in events})
    sla = len({e.event_id for e in events if type(e).__name__ in SLA_EVENT_TYPES})
    wait_for(
        lambda: _count(first.url(database), "SELECT count() FROM {db}.events_local") >= ids,
        120,
        "the replica that came back in step",
    )
    print(f"replica back in step {time.monotonic() - back_at:.1f} s after its restart")
    for node in (first, second):
        node_url = node.url(database)
        assert _count(node_url, "SELECT count() FROM {db}.events_unique") == ids
        assert _count(node_url, "SELECT uniqExact(event_id) FROM {db}.events_local") == ids
        assert _count(node_url, "SELECT count() FROM {db}.events_local") == ids  # no duplicates

        def sla_in_step(u: str = node_url) -> bool:
            return _count(u, "SELECT count() FROM {db}.sla_events_local") >= sla

        wait_for(sla_in_step, 60, "the SLA facts in step")
        assert _count(node_url, "SELECT count() FROM {db}.sla_events_unique") == sla
        assert _count(node_url, "SELECT count() FROM {db}.sla_events_local") == sla
