"""A local ClickHouse cluster: several servers from Debian's ``clickhouse-server`` package with
coordination by Debian's ``zookeeper`` (ClickHouse 18.16 replicates through ZooKeeper).

``local_clickhouse_shards`` shards (1 unless asked) of ``local_clickhouse_replicas`` replicas
each, named ``samt124`` in every server's ``remote_servers``; node ``n`` (from 1, shard by shard)
listens on ``local_clickhouse_port + 10(n-1)`` (native), ``local_clickhouse_http_port + 10(n-1)``
(HTTP) and ``local_clickhouse_port + 10(n-1) + 9`` (replication), with the macros ``{shard}``
(01, 02, ...) and ``{replica}`` = ``node-n``. ZooKeeper runs
standalone on ``local_zookeeper_port``. Everything lives under ``<home>/clickhouse-cluster``.
``samt124 init --cluster samt124`` then creates the schema on every node.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from devtools.local import clickhouse
from devtools.local.process import Daemon, LocalServiceError, file_lock, require_tool
from samt124.settings import Settings

CLUSTER = "samt124"
ZOOKEEPER_JAR = Path("/usr/share/java/zookeeper.jar")
NO_ZOOKEEPER = (
    "A local ClickHouse cluster needs Debian's zookeeper package (apt-get install zookeeper,"
    " or `make system` as root)."
)


@dataclass(frozen=True)
class Node:
    number: int
    shard: int
    port: int
    http_port: int
    interserver_port: int
    daemon: Daemon

    @property
    def pid(self) -> int | None:
        return self.daemon.pid()

    def url(self, database: str = "samt124") -> str:
        return f"clickhouse://default:@127.0.0.1:{self.port}/{database}"


def root(settings: Settings) -> Path:
    return settings.home.resolve() / "clickhouse-cluster"


def nodes(settings: Settings) -> list[Node]:
    base = root(settings)
    replicas = settings.local_clickhouse_replicas
    return [
        Node(
            number,
            (number - 1) // replicas + 1,
            settings.local_clickhouse_port + 10 * (number - 1),
            settings.local_clickhouse_http_port + 10 * (number - 1),
            settings.local_clickhouse_port + 10 * (number - 1) + 9,
            Daemon(f"clickhouse-{number}", base / f"node-{number}", marker="clickhouse"),
        )
        for number in range(1, settings.local_clickhouse_shards * replicas + 1)
    ]


def known_nodes(settings: Settings) -> list[Node]:
    made = root(settings) / "nodes"
    if not made.exists():
        return []
    count, shards = _made(made.read_text())
    layout = {"local_clickhouse_replicas": count // shards, "local_clickhouse_shards": shards}
    return nodes(settings.model_copy(update=layout))


def _made(text: str) -> tuple[int, int]:
    """The servers and shards a cluster was made with (``"4 2"``; ``"2"``: one shard)."""
    count, _, shards = text.strip().partition(" ")
    return int(count), int(shards or 1)


def zookeeper(settings: Settings) -> Daemon:
    return Daemon("zookeeper", root(settings) / "zookeeper", marker="ZooKeeperServerMain")


def install_zookeeper() -> None:
    if ZOOKEEPER_JAR.exists():
        return
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        raise LocalServiceError(NO_ZOOKEEPER)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print("installing Debian's zookeeper package ...", flush=True)
    command = [apt, "install", "-y", "-q", "--no-install-recommends", "zookeeper"]
    if subprocess.run(command, env=env, capture_output=True, check=False).returncode != 0:
        subprocess.run([apt, "update", "-q"], env=env, capture_output=True, check=False)
        subprocess.run(command, env=env, capture_output=True, check=False)
    if not ZOOKEEPER_JAR.exists():
        raise LocalServiceError(NO_ZOOKEEPER)


def zookeeper_answers(port: int) -> bool:
    """True when ZooKeeper serves requests: ``srvr`` names its mode (``ruok`` answers ``imok``
    before the server takes sessions, and a ClickHouse 18.16 server that could not open its
    session at start crashes on its first ON CLUSTER statement)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2.0) as sock:
            sock.sendall(b"srvr")
            answer = b""
            while chunk := sock.recv(4096):
                answer += chunk
    except OSError:
        return False
    return b"Mode: standalone" in answer


def zookeeper_session(port: int) -> bool:
    """True when the ClickHouse server on ``port`` answers and reads ZooKeeper."""
    from clickhouse_driver import Client
    from clickhouse_driver.errors import Error

    if not clickhouse.answers(port):
        return False
    client = Client("127.0.0.1", port=port, connect_timeout=2, send_receive_timeout=10)
    try:
        client.execute("SELECT count() FROM system.zookeeper WHERE path = '/'")
    except (Error, OSError, EOFError):
        return False
    finally:
        client.disconnect()
    return True


def _zookeeper_up(settings: Settings) -> None:
    daemon = zookeeper(settings)
    port = settings.local_zookeeper_port
    process = None
    if daemon.pid() is None:
        install_zookeeper()
        java = require_tool("java", NO_ZOOKEEPER)
        data = daemon.directory / "data"
        data.mkdir(parents=True, exist_ok=True)
        config = daemon.directory / "zoo.cfg"
        config.write_text(
            "\n".join(
                [
                    "tickTime=2000",
                    f"dataDir={data}",
                    f"clientPort={port}",
                    "clientPortAddress=127.0.0.1",
                    "admin.enableServer=false",
                    "4lw.commands.whitelist=srvr",
                    "maxClientCnxns=0",
                    "",
                ]
            )
        )
        process = daemon.start(
            [
                java,
                "-Xmx256m",
                "-cp",
                str(ZOOKEEPER_JAR),
                "org.apache.zookeeper.server.ZooKeeperServerMain",
                str(config),
            ]
        )
    daemon.wait_ready(lambda: zookeeper_answers(port), 60.0, process)


def _config(settings: Settings, node: Node, every: list[Node]) -> Path:
    directory = node.daemon.directory
    data = directory / "data"
    for sub in ("tmp", "user_files", "format_schemas"):
        (data / sub).mkdir(parents=True, exist_ok=True)
    (directory / "logs").mkdir(exist_ok=True)
    shards = "".join(
        "<shard><internal_replication>true</internal_replication>"
        + "".join(
            f"<replica><host>127.0.0.1</host><port>{other.port}</port></replica>"
            for other in every
            if other.shard == shard
        )
        + "</shard>"
        for shard in sorted({other.shard for other in every})
    )
    cluster = (
        f"  <remote_servers><{CLUSTER}>{shards}</{CLUSTER}></remote_servers>\n"
        f"  <zookeeper><node><host>127.0.0.1</host><port>{settings.local_zookeeper_port}</port>"
        "</node><session_timeout_ms>10000</session_timeout_ms></zookeeper>\n"
        f"  <macros><shard>{node.shard:02d}</shard><replica>node-{node.number}</replica></macros>\n"
        f"  <interserver_http_port>{node.interserver_port}</interserver_http_port>\n"
        "  <interserver_http_host>127.0.0.1</interserver_http_host>\n"
        "  <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>\n"
    )
    templates = resources.files("devtools.local").joinpath("templates")
    config = directory / "config.xml"
    config.write_text(
        templates.joinpath("clickhouse-config.xml")
        .read_text()
        .replace("@PORT@", str(node.port))
        .replace("@HTTP_PORT@", str(node.http_port))
        .replace("@SECURE@", cluster)
        .replace("@DATA@", str(data))
        .replace("@LOGS@", str(directory / "logs"))
    )
    (directory / "users.xml").write_text(templates.joinpath("clickhouse-users.xml").read_text())
    return config


def _start(settings: Settings, node: Node, every: list[Node]) -> subprocess.Popen[bytes] | None:
    if node.daemon.pid() is not None:
        return None
    server = clickhouse.install()
    config = _config(settings, node, every)
    return node.daemon.start([server, f"--config-file={config}"])


def up(settings: Settings, timeout: float = 120.0) -> list[Node]:
    """Start ZooKeeper and every server (or find them running); wait until each answers."""
    every = nodes(settings)
    base = root(settings)
    with file_lock(base / ".lock"):
        made = base / "nodes"
        shards = settings.local_clickhouse_shards
        if made.exists() and _made(made.read_text()) != (len(every), shards):
            count, were = _made(made.read_text())
            raise LocalServiceError(
                f"the local ClickHouse cluster in {base} was made with {count} servers in"
                f" {were} shard(s), not {len(every)} in {shards}: `samt124 local down` and"
                f" remove {base} to make another"
            )
        _zookeeper_up(settings)
        made.write_text(f"{len(every)} {shards}")
        for node in every:
            process = _start(settings, node, every)

            def ready(port: int = node.port) -> bool:
                return zookeeper_session(port)

            node.daemon.wait_ready(ready, timeout, process)
    return every


def start_node(settings: Settings, node: Node, timeout: float = 120.0) -> None:
    """Start one server again (after it was stopped or killed); wait until it answers."""
    every = known_nodes(settings) or nodes(settings)
    process = _start(settings, node, every)
    node.daemon.wait_ready(lambda: zookeeper_session(node.port), timeout, process)


def down(settings: Settings) -> list[str]:
    """Stop the servers (all at once: each takes seconds to shut down), then ZooKeeper; the
    names of what was stopped."""
    every = known_nodes(settings)
    with ThreadPoolExecutor(max_workers=max(1, len(every))) as pool:
        done = list(pool.map(lambda node: node.daemon.stop(), every))
    stopped = [f"clickhouse-{node.number}" for node, was in zip(every, done, strict=True) if was]
    if zookeeper(settings).stop():
        stopped.append("zookeeper")
    return stopped
