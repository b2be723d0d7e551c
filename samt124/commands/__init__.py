"""Subcommands of the pipeline's stages, registered on the ``samt124`` parser.

Each module exposes ``register(subparsers)``; this list is the one place that names them. The
development commands (``local``, ``bench``, ``demo``, ``calendar holidays``) come from the
``devtools`` package when it is installed; in the production image they say that they are not.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from samt124.commands import api, consumers, contract, lag, producers, replay, rules, worker
from samt124.commands import dashboard as dashboard_command
from samt124.commands import dlq as dead_letters
from samt124.settings import Settings

DEVELOPMENT = ("local", "bench", "demo", "calendar")


def _development() -> list[Callable[[Any], None]]:
    try:
        from devtools.commands import REGISTRATIONS
    except ModuleNotFoundError as error:
        if (error.name or "").partition(".")[0] != "devtools":
            raise
        return [_not_installed]
    return REGISTRATIONS


def _not_installed(commands: Any) -> None:
    for name in DEVELOPMENT:
        sub = commands.add_parser(name, help="development command (not installed here)")
        sub.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        sub.set_defaults(handler=_say_not_installed)


def _say_not_installed(args: argparse.Namespace, settings: Settings) -> int:
    print(
        f"samt124 {args.command}: `samt124 local`, `bench`, `demo` and `calendar` are development"
        " commands, not installed in this image; run them from a source checkout (make dev)."
    )
    return 2


REGISTRATIONS: list[Callable[[Any], None]] = [
    contract.register,
    rules.register,
    producers.register,
    worker.register,
    consumers.register,
    lag.register,
    dead_letters.register,
    # the 124 service API and its keys
    api.register,
    # the ministry's live page
    dashboard_command.register,
    replay.register,  # rebuilding ClickHouse from the log
    *_development(),
]
