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

from samt124 import settings as settings_module
from samt124.errors import CommandError
from samt124.kafka import trouble as kafka_trouble
from samt124.settings import Settings

Handler = Callable[[argparse.Namespace, Settings], int]


def _settings(args: argparse.Namespace) -> Settings:
    return settings_module.load(
        home=args.home,
        kafka_bootstrap=args.bootstrap,
        clickhouse_url=args.clickhouse_url,
        topic_namespace=args.namespace,
    )


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
    except CommandError as error:
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
