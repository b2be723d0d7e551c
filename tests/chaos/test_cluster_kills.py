"""The pipeline on clusters: a rolling restart of every Kafka broker during traffic, then the
broker that leads the intake partitions SIGKILLed and left down, and a ClickHouse replica
SIGKILLed for 30 s while the sink loads.

A Kafka cluster of the test's own (``samt124 local up --brokers 3`` code, on free ports) with
samt124's topics at three replicas and ``min.insync.replicas=2``, and a ClickHouse cluster of its
own (``--clickhouse-replicas 2``: two servers, one shard, ZooKeeper) with the schema created
``ON CLUSTER``. The worker and the sink run as ``samt124`` subprocesses bootstrapping from all
three brokers, the sink inserting into the ``Distributed`` tables through the servers its URL
names, the one that is SIGKILLed first (it goes on on the other while that one is away);
events are published through the Publisher API (``acks=all``, idempotent; an unconfirmed chunk
is published again).

Phase one publishes three quarters of the traffic, a quarter per broker, while each broker in
turn is stopped cleanly and started again, the next one only once every partition has its three
replicas in sync again. Phase two publishes the last quarter and, part-way, SIGKILLs the broker
that leads most intake partitions (it stays down to the end), then SIGKILLs the second
ClickHouse server and starts it again 30 s later. The publisher, the worker and the sink must
carry on (none of them exits), and at the end the same read-back as the single-broker kill run
(``test_kills.py``): every event in ClickHouse exactly once as analysts read it, one referral per
opened request, each breach once, nothing in the dead-letter topic; and the replica that was
away holds the same rows and reads the same.

``SAMT124_CHAOS_CLUSTER_EVENTS`` sets the number of events (default 12 000; most of the run is
the brokers' restarts); ``SAMT124_CHAOS_CLUSTER_RATE`` the publishing
rate (events/s, default 120).
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from consumers.clickhouse.engine import opened
from consumers.clickhouse.migrations import migrate
from consumers.sink.loader import group_id as sink_group
from devtools.local import clickhouse_cluster, kafka_cluster
from samt124.kafka.admin import ensure_topics, inspect_topics, topic_names
from samt124.kafka.topics import Topics
from samt124.settings import Settings
from streams.app import group_id as worker_group
from tests.chaos.harness import (
    OwnServices,
    Publishing,
    group_lag,
    recent_traffic,
    say,
    scalar,
    stopwatch,
    wait_until,
)
from tests.chaos.harness import _kill_group as kill_group
from tests.chaos.test_kills import Run, _check

EVENTS = int(os.environ.get("SAMT124_CHAOS_CLUSTER_EVENTS", "12000"))
RATE = float(os.environ.get("SAMT124_CHAOS_CLUSTER_RATE", "120"))
CLICKHOUSE_OUTAGE_S = 30.0


def free_run(length: int) -> int:
    """The first of ``length`` consecutive free loopback ports."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first: int = probe.getsockname()[1]
        if first + length > 65535:
            continue
        taken = False
        for port in range(first, first + length):
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    taken = True
                    break
        if not taken:
            return first
    raise AssertionError(f"no {length} consecutive free ports")


def replicas_out_of_sync(settings: Settings) -> int | None:
    """Partitions of samt124's topics with fewer replicas in sync than assigned (None: no
    answer)."""
    from kafka.admin import KafkaAdminClient

    try:
        admin = KafkaAdminClient(**settings.kafka_client_options(), request_timeout_ms=5_000)
    except Exception:
        return None
    try:
        described = admin.describe_topics(topic_names(settings))
    except Exception:
        return None
    finally:
        admin.close()
    return sum(
        1
        for topic in described
        for partition in topic["partitions"]
        if len(partition["isr_nodes"]) < len(partition["replica_nodes"])
    )


def intake_leader(settings: Settings) -> int:
    """The node that leads most partitions of the intake topic."""
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(**settings.kafka_client_options())
    try:
        (intake,) = admin.describe_topics([Topics(settings.topic_namespace).intake])
    finally:
        admin.close()
    leaders = Counter(partition["leader_id"] for partition in intake["partitions"])
    node: int = leaders.most_common(1)[0][0]
    return node


def _routing_resumed(run: Run, since: int, timeout: float) -> float:
    """Seconds until the province topics grow past ``since`` messages."""
    started = time.monotonic()
    wait_until(lambda: (run.routed() or 0) > since, timeout, "routing to go on")
    return round(time.monotonic() - started, 1)


@pytest.mark.timeout(1500)
def test_a_rolling_restart_and_the_intake_leader_killed_lose_nothing(tmp_path: Path) -> None:
    figures: dict[str, float] = {}
    say(f"{EVENTS} events; phase one at {RATE:.0f} events/s")
    # two partitions a topic: a broker restarts (and catches up) in half the time of four
    own = OwnServices.create(tmp_path / "services", namespace="cluster", partitions=2)
    base = free_run(6)
    servers = free_run(30)  # native, HTTP and replication ports of two servers, ZooKeeper
    own.settings = own.settings.model_copy(
        update={
            "local_kafka_port": base,
            "local_controller_port": base + 1,
            "local_kafka_brokers": 3,
            "local_clickhouse_port": servers,
            "local_clickhouse_http_port": servers + 3,
            "local_zookeeper_port": servers + 25,
            "local_clickhouse_replicas": 2,
        }
    )
    nodes = kafka_cluster.nodes(own.settings)
    replicas = clickhouse_cluster.nodes(own.settings)
    try:
        with stopwatch("services_up_s", figures):
            kafka_cluster.up(own.settings)
            clickhouse_cluster.up(own.settings)
            settings = own.settings.model_copy(
                update={
                    # both servers, the one killed below first: the sink fails over to the other
                    "clickhouse_url": "clickhouse://default:@"
                    f"127.0.0.1:{replicas[1].port},127.0.0.1:{replicas[0].port}/chaos",
                    "clickhouse_cluster": clickhouse_cluster.CLUSTER,
                }
            )
            with opened(settings.clickhouse) as engine:
                migrate(engine, cluster=clickhouse_cluster.CLUSTER)
            ensure_topics(settings)
        plan, differences = inspect_topics(settings)
        assert (plan.replication_factor, plan.min_insync_replicas, differences) == (3, 2, [])
        events = recent_traffic(124, EVENTS, datetime.now(UTC))
        quarter = -(-len(events) // 4)  # three restarts, then the kill, a quarter each
        run = Run(own, settings, tmp_path / "logs")
        started = time.monotonic()
        try:
            # -- phase one: each broker stopped cleanly and started again, under traffic
            parts = [events[low : low + quarter] for low in range(0, len(events), quarter)]
            publishings: list[Publishing] = []
            for node, part in zip(nodes, parts, strict=False):
                publishing = Publishing(settings, part, chunk=500, rate=RATE)
                publishings.append(publishing)
                publishing.start()

                def flowing(traffic: Publishing = publishing) -> bool:
                    return traffic.sent >= 500

                wait_until(flowing, 300, "traffic before the restart")
                wait_until(lambda: (run.routed() or 0) > 0, 300, "routing under way")
                assert publishing.finished_at is None, "the traffic ended before the restart"
                with stopwatch(f"restart_{node.number}_s", figures):
                    assert node.daemon.stop(timeout=60.0), f"node {node.number} was not running"
                    kafka_cluster.start_node(own.settings, node)
                    wait_until(
                        lambda: replicas_out_of_sync(settings) == 0,
                        300,
                        f"every replica in sync after node {node.number} came back",
                        every=1.0,
                    )
                _alive(run)
                say(f"node {node.number} restarted: {figures}")
                publishing.join(900)

            # -- phase two: the intake partitions' leader SIGKILLed and left down
            second = Publishing(settings, parts[3], chunk=500, rate=RATE)
            publishings.append(second)
            second.start()
            wait_until(lambda: second.sent >= len(parts[3]) // 4, 300, "phase two's traffic")
            leader = intake_leader(settings)
            victim = next(node for node in nodes if node.number == leader)
            routed = run.routed() or 0
            say(f"SIGKILL node {leader}, the intake leader, at {routed} routed")
            assert second.finished_at is None, "the traffic ended before the kill"
            kill_group(victim.pid)
            figures["killed_node"] = leader
            figures["resume_after_kill_s"] = _routing_resumed(run, routed, 300)

            # -- and a ClickHouse replica SIGKILLed for 30 s while the sink loads
            replica = replicas[1]
            say(f"SIGKILL ClickHouse replica {replica.number} for {CLICKHOUSE_OUTAGE_S:.0f} s")
            kill_group(replica.pid)
            time.sleep(CLICKHOUSE_OUTAGE_S)
            _alive(run)
            clickhouse_cluster.start_node(own.settings, replica)
            replica_back = time.monotonic()
            second.join(900)
            figures["published_s"] = round(time.monotonic() - started, 1)
            _alive(run)
            with stopwatch("worker_drain_s", figures):
                wait_until(
                    lambda: group_lag(settings, worker_group(settings), [run.topics.intake]) == 0,
                    900,
                    "the worker to route everything published",
                )
            _alive(run)
            assert run.worker.stop() == 0, "the worker did not stop cleanly:\n" + run.tail()
            with stopwatch("sink_drain_s", figures):
                wanted = [*Topics(settings.topic_namespace).provinces(), run.topics.sla]
                wait_until(
                    lambda: group_lag(settings, sink_group(settings), wanted) == 0,
                    600,
                    "the sink to store everything",
                )
            assert run.sink.popen.poll() is None, "the sink exited:\n" + run.tail()
            run.sink.stop()
            sink_log = "".join(path.read_text() for path in run.logs.glob("sink-*.log"))
            moved = f"; on 127.0.0.1:{replicas[0].port}"  # logged by the engine when it moved
            assert moved in sink_log, "the sink did not go on on the other replica"
            with stopwatch("replica_in_sync_after_sink_drain_s", figures):
                wait_until(
                    lambda: _local_rows(replica.port) == _local_rows(replicas[0].port),
                    300,
                    "the ClickHouse replica that came back in step",
                    every=1.0,
                )
            figures["replica_in_sync_after_restart_s"] = round(time.monotonic() - replica_back, 1)
        finally:
            run.worker.stop()
            run.sink.stop()
        publishing = publishings[0]
        publishing.retries = sum(p.retries for p in publishings)
        figures["run_s"] = round(time.monotonic() - started, 1)
        assert victim.pid is None, "the killed node is back: nothing restarts it here"
        with stopwatch("read_back_s", figures):
            _check(settings, run, events, publishing, figures)
            # the replica that was away reads the same: every event once
            away = settings.model_copy(update={"clickhouse_url": replica.url("chaos")})
            assert (
                scalar(away, "SELECT count() FROM {db}.events_unique")
                == (figures["clickhouse_unique"])
            )
            assert _local_rows(replica.port) == _local_rows(replicas[0].port)
    finally:
        with contextlib.suppress(Exception):
            kafka_cluster.down(own.settings)
        with contextlib.suppress(Exception):
            clickhouse_cluster.down(own.settings)
        own.down()
    say(f"figures: {figures}")


def _local_rows(port: int) -> int | None:
    """Rows of the events table's local replica on the server at ``port`` (None: no answer)."""
    from clickhouse_driver import Client

    client = Client("127.0.0.1", port=port, connect_timeout=2, send_receive_timeout=10)
    try:
        return int(client.execute("SELECT count() FROM chaos.events_local")[0][0])
    except Exception:
        return None
    finally:
        client.disconnect()


def _alive(run: Run) -> None:
    for name, process in (("worker", run.worker), ("sink", run.sink)):
        code = process.popen.poll()
        assert code is None, f"the {name} exited ({code}):\n" + run.tail()
