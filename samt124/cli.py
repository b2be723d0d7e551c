"""The ``samt124`` console script.

Every subcommand reads the settings once (environment, then flags) and hands them to a
module that does the work; this file only parses arguments, prints and picks the exit code.

One way every subcommand fails (no traceback unless ``--debug`` or ``SAMT124_DEBUG=1``):

- a usage mistake (a bad value, an unknown code, a file that cannot be read, settings that do
  not fit) is one line naming the argument and the problem, before anything connects: exit 2;
- a runtime failure (a service that does not answer, a refused login) is one line of cause and
  one of what to do: exit 1.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError

from samt124 import settings as settings_module
from samt124.errors import FAILED, USAGE, CommandError, CommandFailed
from samt124.kafka import trouble as kafka_trouble
from samt124.settings import Settings

Handler = Callable[[argparse.Namespace, Settings], int]


class UsageMistake(CommandError):
    """The arguments do not parse; ``prog`` names the (sub)command."""

    def __init__(self, prog: str, message: str) -> None:
        super().__init__(message)
        self.prog = prog


class Parser(argparse.ArgumentParser):
    """argparse, with its mistakes as one line (``samt124 simulate: argument --count: ...``)
    rather than the usage text and an exit; ``--help`` still shows the usage."""

    def error(self, message: str) -> NoReturn:
        raise UsageMistake(self.prog, message)


def _settings(args: argparse.Namespace) -> Settings:
    return settings_module.load(
        home=args.home,
        kafka_bootstrap=args.bootstrap,
        clickhouse_url=args.clickhouse_url,
        clickhouse_cluster=getattr(args, "cluster", None),  # `init --cluster NAME`
        topic_namespace=args.namespace,
        debug=args.debug or None,
    )


def _setting_problem(error: ValidationError) -> str:
    """The first problem of the settings as ``SAMT124_NAME: message``."""
    first = error.errors()[0]
    name = "_".join(str(part) for part in first.get("loc", ())).upper()
    return f"setting SAMT124_{name}: {first.get('msg', 'invalid')}" + (
        f" (and {len(error.errors()) - 1} more)" if len(error.errors()) > 1 else ""
    )


# ---------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="samt124",
        description="SAMT 124 requests: Kafka intake, routing to provinces, SLA clocks, analytics.",
        epilog="Exit status: 0 done, 1 failed (a service, a file's lines), 2 a usage mistake;"
        " lag: 3 unhealthy; worker: 4 fenced.",
    )
    parser.add_argument("--home", type=Path, help="data directory (SAMT124_HOME, ./.samt124)")
    parser.add_argument("--bootstrap", help="Kafka bootstrap servers (SAMT124_KAFKA_BOOTSTRAP)")
    parser.add_argument(
        "--clickhouse-url",
        help="clickhouse://user:pass@host:9000/db, or host1:9000,host2:9000 for replicas of a"
        " cluster (SAMT124_CLICKHOUSE_URL)",
    )
    parser.add_argument("--namespace", help="topic prefix (SAMT124_TOPIC_NAMESPACE, samt124)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="tracebacks and the Kafka and ClickHouse clients' own log lines (SAMT124_DEBUG=1)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for register in _registrations():
        register(commands)
    return parser


def _registrations() -> list[Callable[[Any], None]]:
    """Subcommands contributed by the pipeline's stages (kept in their own modules)."""
    from samt124 import commands

    return commands.REGISTRATIONS


def _say(prog: str, *lines: str) -> None:
    for number, line in enumerate(lines):
        shown = _printable(line)
        print(f"  {shown}" if number else f"{prog}: {shown}", file=sys.stderr)


def _printable(text: str) -> str:
    """One line whatever was typed: a line break or control character in a value is escaped."""
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageMistake as mistake:
        _say(
            mistake.prog,
            f"{mistake} ({_global_hint(parser, mistake) or 'see '}{mistake.prog} --help)",
        )
        return USAGE
    except SystemExit as leave:  # --help, --version
        return leave.code if isinstance(leave.code, int) else USAGE
    prog = f"samt124 {args.command}"
    try:
        settings = _settings(args)
        settings.clickhouse  # noqa: B018  (a bad SAMT124_CLICKHOUSE_URL is a usage mistake)
    except ValidationError as error:
        _say(prog, _setting_problem(error))
        return USAGE
    except ValueError as error:
        _say(prog, str(error))
        return USAGE
    debug = settings.debug
    _logging(verbose=args.verbose or debug, debug=debug)
    handler: Handler = args.handler
    try:
        return handler(args, settings)
    except KeyboardInterrupt:
        return 130
    except CommandFailed as failed:
        _debug_traceback(debug)
        _say(prog, failed.cause, failed.remedy)
        return failed.exit_code
    except CommandError as error:
        _debug_traceback(debug)
        _say(prog, str(error))
        return error.exit_code
    except Exception as error:
        _debug_traceback(debug)
        from kafka.errors import KafkaError  # here, not at start-up: most commands never need it

        if isinstance(error, KafkaError):
            _say(
                prog,
                f"Kafka at {settings.bootstrap}: {kafka_trouble.explain(error)}",
                "check SAMT124_KAFKA_BOOTSTRAP and the SAMT124_KAFKA_* security settings;"
                " --debug shows the client's own log",
            )
            return FAILED
        _say(
            prog,
            f"unexpected {type(error).__name__}: {error}",
            "this is a defect in samt124: run again with --debug for the traceback and report it",
        )
        return FAILED


def _global_hint(parser: argparse.ArgumentParser, mistake: UsageMistake) -> str:
    """For ``samt124 lag --bootstrap X``: the global options go before the command."""
    if not str(mistake).startswith("unrecognized arguments:"):
        return ""
    given = str(mistake).split()[2:]
    options = {o for action in parser._actions for o in action.option_strings}
    misplaced = [word for word in given if word.partition("=")[0] in options]
    if not misplaced:
        return ""
    return f"{misplaced[0].partition('=')[0]} is a global option, it goes before the command: see "


def _debug_traceback(debug: bool) -> None:
    if debug:
        traceback.print_exc()


def _logging(*, verbose: bool, debug: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    kafka_trouble.watch()
    if debug:
        return
    for output in logging.getLogger().handlers:
        output.addFilter(kafka_trouble.without_tracebacks)
        output.addFilter(kafka_trouble.without_client_chatter)


if __name__ == "__main__":
    sys.exit(main())
