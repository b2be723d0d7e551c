"""``samt124 schemas check``: is the contract still compatible with every released version?"""

from __future__ import annotations

import argparse
from typing import Any

from samt124.settings import Settings


def register(commands: Any) -> None:
    schemas = commands.add_parser("schemas", help="the Avro contract in schemas/")
    actions = schemas.add_subparsers(dest="schemas_command", required=True, metavar="ACTION")
    check = actions.add_parser(
        "check", help="fail when a schema breaks backward or forward compatibility"
    )
    check.set_defaults(handler=cmd_check)


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    from samt124.contract.compatibility import check, unreleased
    from schemas import RELEASED_DIR, SCHEMA_DIR

    problems = check(SCHEMA_DIR, RELEASED_DIR)
    for problem in problems:
        print(problem)
    for name in unreleased(SCHEMA_DIR, RELEASED_DIR):
        print(f"note: {name} has no released version yet")
    if problems:
        print(f"{len(problems)} compatibility problem(s)")
        return 1
    print("schemas compatible with every released version")
    return 0
