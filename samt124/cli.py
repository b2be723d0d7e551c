"""The ``samt124`` console script.

Every subcommand reads the settings once (environment, then flags) and hands them to a
module that does the work; this file only parses arguments and prints.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from samt124 import kafka_trouble
from samt124 import settings as settings_module
from samt124.local.process import LocalServiceError
from samt124.settings import Settings

Handler = Callable[[argparse.Namespace, Settings], int]
SERVICES = ("kafka", "clickhouse")


def _settings(args: argparse.Namespace) -> Settings:
    return settings_module.load(
        home=args.home,
        kafka_bootstrap=args.bootstrap,
        clickhouse_url=args.clickhouse_url,
        topic_namespace=args.namespace,
    )


# ---------------------------------------------------------------- local services


def _local_services(args: argparse.Namespace) -> tuple[str, ...]:
    chosen: tuple[str, ...] = tuple(args.services) or SERVICES
    return chosen


def cmd_local_up(args: argparse.Namespace, settings: Settings) -> int:
    from samt124.local import clickhouse, kafka

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
    from samt124.local import clickhouse, kafka

    services = _local_services(args)
    if "clickhouse" in services:
        print("clickhouse  " + ("stopped" if clickhouse.down(settings) else "was not running"))
    if "kafka" in services:
        print("kafka       " + ("stopped" if kafka.down(settings) else "was not running"))
    return 0


def cmd_local_status(args: argparse.Namespace, settings: Settings) -> int:
    from samt124.local import clickhouse, kafka

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


# ---------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="samt124",
        description="SAMT 124 requests: Kafka intake, routing to provinces, SLA clocks, analytics.",
    )
    parser.add_argument("--home", type=Path, help="data directory (SAMT124_HOME, ./.samt124)")
    parser.add_argument("--bootstrap", help="Kafka bootstrap servers (SAMT124_KAFKA_BOOTSTRAP)")
    parser.add_argument(
        "--clickhouse-url", help="clickhouse://user:pass@host:9000/db (SAMT124_CLICKHOUSE_URL)"
    )
    parser.add_argument("--namespace", help="topic prefix (SAMT124_TOPIC_NAMESPACE, samt124)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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

    for register in _registrations():
        register(commands)
    return parser


def _registrations() -> list[Callable[[Any], None]]:
    """Subcommands contributed by the pipeline's stages (kept in their own modules)."""
    from samt124 import commands

    return commands.REGISTRATIONS


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    kafka_trouble.watch()
    if not args.verbose:
        for output in logging.getLogger().handlers:
            output.addFilter(kafka_trouble.without_tracebacks)
    handler: Handler = args.handler
    settings = _settings(args)
    try:
        return handler(args, settings)
    except LocalServiceError as error:
        print(f"samt124: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        from kafka.errors import KafkaError  # here, not at start-up: most commands never need it

        if not isinstance(error, KafkaError):
            raise
        reason = kafka_trouble.explain(error)
        print(f"samt124 {args.command}: Kafka at {settings.bootstrap}: {reason}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
