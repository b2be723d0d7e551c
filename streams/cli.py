"""``samt124 worker``: run the router and SLA tracker (a Faust worker)."""

from __future__ import annotations

import argparse
from typing import Any

from samt124.settings import Settings


def register(commands: Any) -> None:
    worker = commands.add_parser(
        "worker", help="route intake to the provinces and keep the SLA clocks (Faust)"
    )
    worker.add_argument(
        "--web-port", type=int, help="serve Faust's web views (health, /performance/) here"
    )
    worker.add_argument("--loglevel", default="warning", help="Faust log level")
    worker.set_defaults(handler=cmd_worker)


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    import sys

    import faust

    from samt124.kafka_admin import ensure_topics
    from streams.app import Worker

    ensure_topics(settings)
    settings.home.mkdir(parents=True, exist_ok=True)
    worker = Worker(settings, web_port=args.web_port)
    runner = faust.Worker(worker.app, loglevel=args.loglevel, quiet=True)
    if not sys.stdout.isatty():
        runner.spinner = None  # its cursor codes would land in log files
    runner.execute_from_commandline()
    return 0
