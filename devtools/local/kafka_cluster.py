"""A local Apache Kafka cluster of several KRaft nodes on loopback, from the same Maven jars as
the single broker (:mod:`devtools.local.kafka`).

Each node runs the broker and controller roles together (three voters: the quorum survives
one lost node), with its own ``node.id``, ports and log directory under ``<home>/kafka-cluster``,
and the storage of every node formatted with one cluster id. Node ``n`` (from 1) listens on
``local_kafka_port + 2(n-1)`` for clients and ``local_controller_port + 2(n-1)`` for the
quorum: 9092, 9094, 9096 and 9093, 9095, 9097 by default. The cluster's internal topics
(consumer offsets, transactions) get three replicas and ``min.insync.replicas=2``.
"""

from __future__ import annotations

import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from devtools.local import kafka
from devtools.local.process import Daemon, LocalServiceError, file_lock
from samt124.settings import Settings

NODE_HEAP = "-Xmx512m"


@dataclass(frozen=True)
class Node:
    """One node of the local cluster."""

    number: int  # node.id, from 1
    port: int
    controller_port: int
    daemon: Daemon

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.daemon.pid()


def root(settings: Settings) -> Path:
    return settings.home.resolve() / "kafka-cluster"


def nodes(settings: Settings, count: int | None = None) -> list[Node]:
    """The cluster's nodes (``count``: how many; default the settings' broker count)."""
    size = count if count is not None else settings.local_kafka_brokers
    return [
        Node(
            number,
            settings.local_kafka_port + 2 * (number - 1),
            settings.local_controller_port + 2 * (number - 1),
            Daemon(f"kafka-{number}", root(settings) / f"node-{number}", marker="kafka.Kafka"),
        )
        for number in range(1, size + 1)
    ]


def known_nodes(settings: Settings) -> list[Node]:
    """The nodes a cluster in this home was made with (none if it never was)."""
    made = root(settings) / "nodes"
    if not made.exists():
        return []
    return nodes(settings, int(made.read_text().strip()))


def bootstrap(settings: Settings) -> str:
    return ",".join(node.address for node in nodes(settings))


def _properties(settings: Settings, node: Node, every: list[Node]) -> str:
    voters = ",".join(f"{n.number}@127.0.0.1:{n.controller_port}" for n in every)
    replicas = min(3, len(every))
    isr = 2 if replicas >= 3 else 1
    data = node.daemon.directory / "data"
    return "\n".join(
        [
            "# One node of a local Apache Kafka cluster in KRaft mode, loopback only.",
            "process.roles=broker,controller",
            f"node.id={node.number}",
            f"controller.quorum.voters={voters}",
            f"listeners=PLAINTEXT://{node.address},CONTROLLER://127.0.0.1:{node.controller_port}",
            f"advertised.listeners=PLAINTEXT://{node.address}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            f"log.dirs={data}",
            f"num.partitions={settings.partitions}",
            f"default.replication.factor={replicas}",
            f"min.insync.replicas={isr}",
            f"offsets.topic.replication.factor={replicas}",
            "offsets.topic.num.partitions=8",
            f"transaction.state.log.replication.factor={replicas}",
            f"transaction.state.log.min.isr={isr}",
            "unclean.leader.election.enable=false",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=false",
            "log.retention.hours=-1",
            "log.segment.bytes=268435456",
            "num.network.threads=2",
            "num.io.threads=2",
            "",
        ]
    )


def _prepare(settings: Settings, every: list[Node]) -> Path:
    """Write each node's configuration and format its storage once (one cluster id)."""
    libs = kafka.jars(settings)
    base = root(settings)
    base.mkdir(parents=True, exist_ok=True)
    made = base / "nodes"
    if made.exists() and int(made.read_text().strip()) != len(every):
        raise LocalServiceError(
            f"the local cluster in {base} was made with {made.read_text().strip()} nodes, not"
            f" {len(every)}: `samt124 local down` and remove {base} to make another"
        )
    id_file = base / "cluster.id"
    if not id_file.exists():
        id_file.write_text(uuid.uuid4().hex[:22])
    cluster_id = id_file.read_text().strip()
    for node in every:
        directory = node.daemon.directory
        directory.mkdir(parents=True, exist_ok=True)
        properties = directory / "server.properties"
        properties.write_text(_properties(settings, node, every))
        log4j = directory / "log4j2.properties"
        log4j.write_text(
            kafka.template("log4j2.properties").replace("@LOGS@", str(directory / "logs"))
        )
        if (directory / "data" / "meta.properties").exists():
            continue
        result = subprocess.run(
            kafka.java_command(
                libs,
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(properties),
                log4j=log4j,
            ),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise LocalServiceError(
                f"formatting node {node.number}'s KRaft storage failed:\n"
                f"{result.stdout}{result.stderr}"
            )
    made.write_text(str(len(every)))
    return libs


def _start(libs: Path, node: Node) -> subprocess.Popen[bytes] | None:
    if node.daemon.pid() is not None:
        return None
    directory = node.daemon.directory
    command = kafka.java_command(
        libs,
        "kafka.Kafka",
        str(directory / "server.properties"),
        log4j=directory / "log4j2.properties",
    )
    return node.daemon.start([*command[:1], NODE_HEAP, *command[1:]])


def brokers_seen(address: str, timeout_ms: int = 2000) -> int:
    """How many brokers the cluster's metadata lists, asked of the node at ``address``."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    if not kafka.listening(address):
        return 0
    try:
        admin = KafkaAdminClient(bootstrap_servers=address, request_timeout_ms=timeout_ms)
    except (KafkaError, OSError, ValueError):
        return 0
    try:
        return len(admin.describe_cluster()["brokers"])
    except (KafkaError, OSError):
        return 0
    finally:
        admin.close()


def up(settings: Settings, timeout: float = 180.0) -> list[Node]:
    """Start every node (or find it running) and wait until each sees all the brokers."""
    every = nodes(settings)
    with file_lock(root(settings) / ".lock"):
        libs = _prepare(settings, every)
        started = [(node, _start(libs, node)) for node in every]
        try:
            for node, process in started:

                def ready(address: str = node.address) -> bool:
                    return brokers_seen(address) == len(every)

                node.daemon.wait_ready(ready, timeout, process)
        except BaseException:
            for node, process in started:
                if process is not None:
                    node.daemon.stop(timeout=60.0)
            raise
    return every


def start_node(settings: Settings, node: Node, timeout: float = 120.0) -> None:
    """Start one node again (after it was stopped or killed); wait until it is back."""
    libs = kafka.jars(settings)
    every = known_nodes(settings) or nodes(settings)
    process = _start(libs, node)
    node.daemon.wait_ready(lambda: brokers_seen(node.address) == len(every), timeout, process)


def down(settings: Settings) -> list[int]:
    """Stop every node that runs, all at once (each cleanly); the numbers of those stopped.

    Together, not in turn: the last node of a quorum stopped alone waits for controllers that
    are already gone, and is only killed when its time runs out."""
    known = known_nodes(settings)
    with ThreadPoolExecutor(max_workers=max(1, len(known))) as pool:
        stopped = list(pool.map(lambda node: node.daemon.stop(timeout=60.0), known))
    return [node.number for node, was in zip(known, stopped, strict=True) if was]


def running(settings: Settings) -> list[Node]:
    return [node for node in known_nodes(settings) if node.pid is not None]
