"""On a three-broker cluster beside one broker: end-to-end throughput, publish → queryable
latency, and how long routing stops when the broker leading the intake partitions is killed.

The cluster is a private one (``samt124 local up --brokers 3`` code, on free ports, in the
benchmark's work directory); the single broker and the ClickHouse server are the benchmark's
own. Both sides run the same measurements in the same run, one after the other.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from devtools.bench import freshness, harness, throughput, workload
from devtools.bench.results import Section
from samt124.kafka.topics import Topics
from samt124.settings import Settings

RESUME_RATE = 300.0  # events/s published while the leader is killed
RESUME_SECONDS = 40.0


def _free_run(length: int) -> int:
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first: int = probe.getsockname()[1]
        if first + length > 65535:
            continue
        free = True
        for port in range(first, first + length):
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    free = False
                    break
        if free:
            return first
    raise harness.BenchError(f"no {length} consecutive free ports for the cluster")


@contextlib.contextmanager
def private_cluster(base: Settings, work: Path) -> Iterator[Settings]:
    """Three KRaft nodes of the benchmark's own; settings bootstrapping from all three."""
    from devtools.local import kafka_cluster

    port = _free_run(6)
    local = base.model_copy(
        update={
            "home": work / "cluster-home",
            "local_kafka_port": port,
            "local_controller_port": port + 1,
            "local_kafka_brokers": 3,
        }
    )
    kafka_cluster.up(local)
    try:
        yield local.model_copy(update={"kafka_bootstrap": local.bootstrap})
    finally:
        kafka_cluster.down(local)


def measure_cluster(
    base: Settings, server_url: str, count: int, samples: int, work: Path, timeout: float
) -> Section:
    section = Section(
        "cluster",
        "Three brokers beside one: throughput, freshness, a killed leader",
        f"The end-to-end measurement (`e2e`: {count:,} events published, the clock to the last"
        " row queryable in `events_unique`) and the freshness one (`freshness`: "
        f"{samples} events one at a time, publish → queryable) run first on the benchmark's"
        " single broker, then on a private three-node KRaft cluster (each node broker and"
        " controller, the same jars), where samt124's topics get three replicas and"
        " `min.insync.replicas=2`; the producers are idempotent with `acks=all` on both."
        f" Then, on the cluster, traffic is published at {RESUME_RATE:g} events/s for"
        f" {RESUME_SECONDS:g} s with the worker and the sink running; a third of the way in,"
        " the node leading most intake partitions is SIGKILLed and left down. *Resume* is the"
        " time from the kill to the first poll (every 0.1 s) in which the province topics have"
        " grown by 100 messages since the kill.",
    )
    single_dir = work / "cluster-single"
    three_dir = work / "cluster-three"
    for directory in (single_dir, three_dir):
        directory.mkdir(parents=True, exist_ok=True)
    single, _ = throughput.measure_end_to_end(base, server_url, count, single_dir, timeout)
    fresh_single = freshness.measure_freshness(base, server_url, samples, single_dir)
    with private_cluster(base, work) as cluster:
        three, _ = throughput.measure_end_to_end(cluster, server_url, count, three_dir, timeout)
        fresh_three = freshness.measure_freshness(cluster, server_url, samples, three_dir)
        resume, killed = _resume_after_leader_kill(cluster, server_url, work)
    for label, source in (("one broker", single), ("three brokers", three)):
        for figure in source.figures:
            if figure.label in ("publish → queryable", "publish → routed (worker)"):
                section.add(f"{label}: {figure.label}", figure.value, figure.unit, figure.note)
    for label, source in (("one broker", fresh_single), ("three brokers", fresh_three)):
        for figure in source.figures:
            if figure.label.startswith("server:"):
                name = figure.label.replace("server:", "freshness")
                section.add(f"{label}: {name}", figure.value, figure.unit, figure.note)
    section.add(
        "three brokers: routing resumed after the leader's kill",
        resume,
        "s",
        f"node {killed} SIGKILLed",
    )
    return section


def _resume_after_leader_kill(
    settings: Settings, server_url: str, work: Path
) -> tuple[float | None, int]:
    import threading

    from devtools.local import kafka_cluster

    database = f"bench_resume_{int(time.time())}"
    settings = harness.namespace(
        settings, "resume", clickhouse_url=f"{server_url.rsplit('/', 1)[0]}/{database}"
    )
    harness.topics_ready(settings)
    harness.run(settings, "init", log=work / "resume-init.log")
    worker = harness.start(settings, "worker", log=work / "resume-worker.log")
    sink = harness.start(settings, "sink", log=work / "resume-sink.log")
    events = workload.events(int(RESUME_RATE * RESUME_SECONDS))
    publisher = threading.Thread(
        target=throughput._paced_publish, args=(settings, events, RESUME_RATE), daemon=True
    )
    watcher = throughput._Watcher(settings)
    try:
        publisher.start()
        time.sleep(RESUME_SECONDS / 3)
        leader = _intake_leader(settings)
        node = next(n for n in kafka_cluster.known_nodes(settings) if n.number == leader)
        before = watcher.routed()
        pid = node.pid
        if pid is None:
            raise harness.BenchError(f"node {leader} is not running")
        killed_at = time.monotonic()
        os.killpg(pid, signal.SIGKILL)
        resumed = None
        while time.monotonic() - killed_at < 300:
            with contextlib.suppress(Exception):
                if watcher.routed() >= before + 100:
                    resumed = time.monotonic() - killed_at
                    break
            time.sleep(0.1)
        publisher.join(RESUME_SECONDS * 3)
    finally:
        watcher.close()
        worker.stop()
        sink.stop()
    return (round(resumed, 2) if resumed is not None else None), leader


def _intake_leader(settings: Settings) -> int:
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(**settings.kafka_client_options())
    try:
        (intake,) = admin.describe_topics([Topics(settings.topic_namespace).intake])
    finally:
        admin.close()
    leaders = Counter(p["leader_id"] for p in intake["partitions"])
    node: int = leaders.most_common(1)[0][0]
    return node
