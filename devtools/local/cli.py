"""``samt124 local up|down|status``: the Kafka broker and ClickHouse server on this machine."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

from samt124.settings import Settings

SERVICES = ("kafka", "clickhouse")


def register(commands: Any) -> None:
    local = commands.add_parser("local", help="run Kafka and ClickHouse on this machine")
    local_commands = local.add_subparsers(dest="local_command", required=True, metavar="ACTION")
    for name, handler, text in (
        ("up", cmd_local_up, "start (fetching/installing on first use) and wait until ready"),
        ("down", cmd_local_down, "stop cleanly"),
        ("status", cmd_local_status, "what runs where"),
    ):
        sub = local_commands.add_parser(name, help=text)
        if name == "up":
            sub.add_argument(
                "--brokers",
                type=_count("brokers"),
                help="a local Kafka cluster of N KRaft nodes (SAMT124_LOCAL_KAFKA_BROKERS, 1);"
                " its topics get min(3, N) replicas",
            )
            sub.add_argument(
                "--clickhouse-replicas",
                type=_count("servers"),
                help="a local ClickHouse cluster: each shard has N servers (replicas), with"
                " ZooKeeper (SAMT124_LOCAL_CLICKHOUSE_REPLICAS, 1); then `init --cluster samt124`",
            )
            sub.add_argument(
                "--clickhouse-shards",
                type=_count("shards"),
                help="a local ClickHouse cluster of N shards, each of --clickhouse-replicas"
                " servers; rows go to the shard their request id names"
                " (SAMT124_LOCAL_CLICKHOUSE_SHARDS, 1)",
            )
        if name != "status":
            sub.add_argument(
                "services",
                nargs="*",
                choices=[*SERVICES, []],
                metavar="SERVICE",
                help="kafka and/or clickhouse (default: both)",
            )
        sub.set_defaults(handler=handler)


def _count(things: str) -> Callable[[str], int]:
    """An argument type: a number of ``things``, 1 to 9."""

    def count(text: str) -> int:
        try:
            number = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"a number of {things}, 1 to 9, not {text!r}"
            ) from None
        if not 1 <= number <= 9:
            raise argparse.ArgumentTypeError(f"a number of {things}, 1 to 9, not {number}")
        return number

    return count


def _local_services(args: argparse.Namespace) -> tuple[str, ...]:
    chosen: tuple[str, ...] = tuple(args.services) or SERVICES
    return chosen


def cmd_local_up(args: argparse.Namespace, settings: Settings) -> int:
    from devtools.local import clickhouse, kafka

    services = _local_services(args)
    if args.brokers is not None:
        settings = settings.model_copy(update={"local_kafka_brokers": args.brokers})
    if "kafka" in services and settings.uses_local_kafka and settings.local_kafka_brokers > 1:
        _cluster_up(settings)
    elif "kafka" in services:
        if settings.uses_local_kafka:
            state = kafka.up(settings)
            print(f"kafka       running  pid {state.pid}  bootstrap {state.bootstrap}")
            for listener in state.secured:
                print(f"            also {listener}")
        else:
            print(f"kafka       external {settings.bootstrap} (SAMT124_KAFKA_BOOTSTRAP)")
    if args.clickhouse_replicas is not None:
        settings = settings.model_copy(
            update={"local_clickhouse_replicas": args.clickhouse_replicas}
        )
    if args.clickhouse_shards is not None:
        settings = settings.model_copy(update={"local_clickhouse_shards": args.clickhouse_shards})
    clustered = settings.local_clickhouse_replicas * settings.local_clickhouse_shards > 1
    if "clickhouse" in services and clustered:
        _clickhouse_cluster_up(settings)
    elif "clickhouse" in services:
        server = clickhouse.up(settings)
        print(f"clickhouse  running  pid {server.pid}  {server.url}")
        if server.secure_url:
            print(f"            also {server.secure_url}")
    print(f"analytics   {settings.clickhouse.describe()}")
    return 0


def _cluster_up(settings: Settings) -> None:
    from devtools.local import kafka, kafka_cluster
    from devtools.local.process import LocalServiceError

    if kafka.status(settings).running:
        raise LocalServiceError(
            "the single local broker runs on these ports: `samt124 local down kafka` first"
        )
    every = kafka_cluster.up(settings)
    for node in every:
        print(f"kafka-{node.number}     running  pid {node.pid}  {node.address}")
    print(f"kafka       bootstrap {settings.bootstrap}")
    if "SAMT124_LOCAL_KAFKA_BROKERS" not in os.environ:
        print(f"            export SAMT124_LOCAL_KAFKA_BROKERS={len(every)} for the other commands")


def _clickhouse_cluster_up(settings: Settings) -> None:
    from devtools.local import clickhouse, clickhouse_cluster
    from devtools.local.process import LocalServiceError

    if clickhouse.status(settings).running:
        raise LocalServiceError(
            "the single local ClickHouse server runs on these ports:"
            " `samt124 local down clickhouse` first"
        )
    every = clickhouse_cluster.up(settings)
    print(f"zookeeper   running  127.0.0.1:{settings.local_zookeeper_port}")
    for node in every:
        where = f"pid {node.pid}  {node.url()}  shard {node.shard:02d}"
        print(f"clickhouse-{node.number} running  {where}")
    print(
        f"            cluster {clickhouse_cluster.CLUSTER}: `samt124 --clickhouse-url"
        f" {every[0].url()} init --cluster {clickhouse_cluster.CLUSTER}`"
    )


def cmd_local_down(args: argparse.Namespace, settings: Settings) -> int:
    from devtools.local import clickhouse, clickhouse_cluster, kafka, kafka_cluster

    services = _local_services(args)
    if "clickhouse" in services:
        for name in clickhouse_cluster.down(settings):
            print(f"{name:11} stopped")
        print("clickhouse  " + ("stopped" if clickhouse.down(settings) else "was not running"))
    if "kafka" in services:
        for number in kafka_cluster.down(settings):
            print(f"kafka-{number}     stopped")
        print("kafka       " + ("stopped" if kafka.down(settings) else "was not running"))
    return 0


def cmd_local_status(args: argparse.Namespace, settings: Settings) -> int:
    from devtools.local import clickhouse, clickhouse_cluster, kafka, kafka_cluster

    broker = kafka.status(settings)
    cluster = kafka_cluster.known_nodes(settings)
    if settings.uses_local_kafka and cluster and not broker.running:
        for node in cluster:
            pid = node.pid
            state = f"running  pid {pid}  {node.address}" if pid else f"stopped  {node.address}"
            print(f"kafka-{node.number}     {state}")
    elif settings.uses_local_kafka:
        where = f"pid {broker.pid}  bootstrap {broker.bootstrap}" if broker.running else "-"
        print(f"kafka       {'running' if broker.running else 'stopped':8} {where}")
    else:
        reachable = kafka.answers(settings.bootstrap)
        print(f"kafka       external {settings.bootstrap} {'answers' if reachable else 'DOWN'}")
    for server_node in clickhouse_cluster.known_nodes(settings):
        pid = server_node.pid
        at = server_node.url()
        state = f"running  pid {pid}  {at}" if pid else f"stopped  {at}"
        print(f"clickhouse-{server_node.number} {state}  shard {server_node.shard:02d}")
    server = clickhouse.status(settings)
    where = f"pid {server.pid}  {server.url}" if server.running else "-"
    print(f"clickhouse  {'running' if server.running else 'stopped':8} {where}")
    if server.running and server.secure_url:
        print(f"            also {server.secure_url}")
    print(f"analytics   {settings.clickhouse.describe()}")
    return 0
