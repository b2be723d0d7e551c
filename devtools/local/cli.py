"""``samt124 local up|down|status``: the Kafka broker and ClickHouse server on this machine."""

from __future__ import annotations

import argparse
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
        if name != "status":
            sub.add_argument(
                "services",
                nargs="*",
                choices=[*SERVICES, []],
                metavar="SERVICE",
                help="kafka and/or clickhouse (default: both)",
            )
        sub.set_defaults(handler=handler)


def _local_services(args: argparse.Namespace) -> tuple[str, ...]:
    chosen: tuple[str, ...] = tuple(args.services) or SERVICES
    return chosen


def cmd_local_up(args: argparse.Namespace, settings: Settings) -> int:
    from devtools.local import clickhouse, kafka

    services = _local_services(args)
    if "kafka" in services:
        if settings.uses_local_kafka:
            state = kafka.up(settings)
            print(f"kafka       running  pid {state.pid}  bootstrap {state.bootstrap}")
            for listener in state.secured:
                print(f"            also {listener}")
        else:
            print(f"kafka       external {settings.bootstrap} (SAMT124_KAFKA_BOOTSTRAP)")
    if "clickhouse" in services:
        server = clickhouse.up(settings)
        print(f"clickhouse  running  pid {server.pid}  {server.url}")
        if server.secure_url:
            print(f"            also {server.secure_url}")
    print(f"analytics   {settings.clickhouse.describe()}")
    return 0


def cmd_local_down(args: argparse.Namespace, settings: Settings) -> int:
    from devtools.local import clickhouse, kafka

    services = _local_services(args)
    if "clickhouse" in services:
        print("clickhouse  " + ("stopped" if clickhouse.down(settings) else "was not running"))
    if "kafka" in services:
        print("kafka       " + ("stopped" if kafka.down(settings) else "was not running"))
    return 0


def cmd_local_status(args: argparse.Namespace, settings: Settings) -> int:
    from devtools.local import clickhouse, kafka

    broker = kafka.status(settings)
    if settings.uses_local_kafka:
        where = f"pid {broker.pid}  bootstrap {broker.bootstrap}" if broker.running else "-"
        print(f"kafka       {'running' if broker.running else 'stopped':8} {where}")
    else:
        reachable = kafka.answers(settings.bootstrap)
        print(f"kafka       external {settings.bootstrap} {'answers' if reachable else 'DOWN'}")
    server = clickhouse.status(settings)
    where = f"pid {server.pid}  {server.url}" if server.running else "-"
    print(f"clickhouse  {'running' if server.running else 'stopped':8} {where}")
    if server.running and server.secure_url:
        print(f"            also {server.secure_url}")
    print(f"analytics   {settings.clickhouse.describe()}")
    return 0
