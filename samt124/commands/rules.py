"""``samt124 rules check FILE``: is a referral rules, SLA policies, calendars or holidays file good?

Exit status 0 when the file loads as the worker would load it, 1 with one line per problem
(``FILE: PATH: PROBLEM``) when it does not, 2 when it cannot be read or its kind is unclear.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from samt124.domain.data_check import UnknownKind, check_file
from samt124.domain.data_files import KINDS
from samt124.settings import Settings


def register(commands: Any) -> None:
    rules = commands.add_parser(
        "rules", help="the data files: referral rules, SLA policies, calendars, holidays"
    )
    actions = rules.add_subparsers(dest="rules_command", required=True, metavar="ACTION")
    check = actions.add_parser("check", help="load a data file as the worker would; list problems")
    check.add_argument("file", type=Path, help="a JSON data file")
    check.add_argument("--kind", choices=KINDS, help="the kind of file (default: from its keys)")
    check.set_defaults(handler=cmd_check)


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    try:
        checked = check_file(args.file, args.kind)
    except OSError as error:
        print(f"samt124 rules check: cannot read {args.file}: {error.strerror}", file=sys.stderr)
        return 2
    except UnknownKind as error:
        print(f"samt124 rules check: {error}; give --kind {{{','.join(KINDS)}}}", file=sys.stderr)
        return 2
    if checked.ok:
        print(f"{checked.path}: {checked.summary}: OK")
        return 0
    for problem in checked.problems:
        print(problem)
    print(f"{checked.path}: {len(checked.problems)} problem(s)")
    return 1
