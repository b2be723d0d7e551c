"""The analytics schema on a ClickHouse cluster (`samt124 init --cluster`): two servers from
Debian's package, one shard and two replicas, ZooKeeper from Debian's package.

The same events, each batch stored twice as a retrying sink would, give the same reports on the
cluster as on one server, and each event is counted once on either replica. A replica SIGKILLed
for 30 s while batches are loaded comes back in step, and every event is there exactly once.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from consumers.analytics.reports import REPORTS, ReportParams, run
from consumers.clickhouse.engine import Engine, opened
from consumers.clickhouse.migrations import migrate
from consumers.sink.loader import Message, build_batch, store
from consumers.sink.rows import Position
from devtools.local import clickhouse_cluster
from samt124.cli import main
from samt124.contract.wire import encode
from samt124.domain.events import Event
from samt124.settings import Settings, parse_clickhouse_url
from tests.integration.conftest import Services, unique
from tests.integration.pipeline import wait_for
from tests.integration.test_reports import AS_OF, TOPICS, dataset

pytestmark = pytest.mark.integration
PORT = 39400  # servers on 39400 and 39410 (HTTP 39423, 39433), ZooKeeper on 39481
OUTAGE_S = float(os.environ.get("SAMT124_CLUSTER_OUTAGE_S", "30"))
BYS = {"sla": ("province", "body", "category", "month"), "durations": ("province", "body")}


@pytest.fixture(scope="module")
def cluster(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    local = Settings(
        home=tmp_path_factory.mktemp("chcluster") / "home",
        cache=services.base.cache,
        local_clickhouse_port=PORT,
        local_clickhouse_http_port=PORT + 23,
        local_zookeeper_port=PORT + 81,
        local_clickhouse_replicas=2,
    )
    try:
        clickhouse_cluster.up(local)
        yield local
    finally:
        clickhouse_cluster.down(local)


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
        assert engines["events_unique"] == "View"


def test_init_cluster_on_the_embedded_engine_is_a_usage_mistake(
    capsys: pytest.CaptureFixture[Any], tmp_path: Path
) -> None:
    code = main(["--clickhouse-url", f"chdb://{tmp_path / 'chdb'}", "init", "--cluster", "samt124"])
    assert code == 2
    assert "a ClickHouse cluster needs a server" in capsys.readouterr().err


def test_the_same_reports_on_one_server_and_on_the_cluster(
    cluster: Settings, server_url: str, events: list[Event]
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


def test_a_replica_killed_during_loading_comes_back_with_every_event_once(
    cluster: Settings, events: list[Event]
) -> None:
    database = unique("cl_")
    writer = parse_clickhouse_url(_node_url(cluster, 1, database)).model_copy(
        update={"cluster": clickhouse_cluster.CLUSTER}
    )
    second = clickhouse_cluster.nodes(cluster)[1]
    messages = _messages(events)
    batches = [
        build_batch(messages[start : start + 250], TOPICS, AS_OF, b"key")
        for start in range(0, len(messages), 250)
    ]
    with opened(writer) as engine:
        migrate(engine, cluster=clickhouse_cluster.CLUSTER)
        third = len(batches) // 3
        for batch in batches[:third]:
            store(engine, batch)
        pid = second.pid
        assert pid is not None
        os.killpg(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        down = batches[third : 2 * third]
        for number, batch in enumerate(down):  # loading goes on while the replica is away
            store(engine, batch)
            store(engine, batch)
            time.sleep(max(0.0, killed_at + OUTAGE_S * (number + 1) / len(down) - time.monotonic()))
        wait_for(lambda: second.pid is None, 30, "the killed replica gone")
        clickhouse_cluster.start_node(cluster, second)
        back_at = time.monotonic()
        for batch in batches[2 * third :]:
            store(engine, batch)
    ids = len({event.event_id for event in events})
    url = second.url(database)
    wait_for(
        lambda: _count(url, "SELECT count() FROM {db}.events_local") >= ids,
        120,
        "the replica that came back in step",
    )
    print(f"replica back in step {time.monotonic() - back_at:.1f} s after its restart")
    for number in (1, 2):
        node_url = _node_url(cluster, number, database)
        assert _count(node_url, "SELECT count() FROM {db}.events_unique") == ids
        assert _count(node_url, "SELECT uniqExact(event_id) FROM {db}.events_local") == ids
        assert _count(node_url, "SELECT count() FROM {db}.events_local") == ids  # no duplicates
