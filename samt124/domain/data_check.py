"""Checking a data file before it is deployed, as the worker would load it.

:func:`check_file` tells which kind of file it is (or is told), validates it with its model
(:mod:`samt124.domain.data_files`) and builds the runtime structures from it, so that every
problem the worker would meet at start-up is found first, each named by file and path.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from samt124.domain.calendar import parse_config
from samt124.domain.data_files import DESCRIPTIONS, DataFileError, Kind, kind_of
from samt124.domain.official_holidays import parse_holidays
from samt124.domain.routing import catalogue_groups, parse_rules
from samt124.domain.sla import parse_policies


class UnknownKind(ValueError):
    """The file's keys do not say which kind of data file it is."""


@dataclass(frozen=True)
class Checked:
    path: Path
    kind: Kind | None
    summary: str  # what the file holds, when it loaded
    problems: tuple[str, ...]  # "FILE: PATH: PROBLEM" lines; empty when the file is good

    @property
    def ok(self) -> bool:
        return not self.problems


def _summary(kind: Kind, raw: Mapping[str, Any], path: Path) -> str:
    source = str(path)
    if kind == "rules":
        rules = parse_rules(raw, catalogue_groups(), source)
        names = ", ".join(v.version for v in rules.versions)
        return f"{len(rules.versions)} version(s): {names}"
    if kind == "policies":
        policies = parse_policies(raw, catalogue_groups(), source)
        names = ", ".join(v.version for v in policies.versions)
        return f"{len(policies.versions)} version(s): {names}"
    if kind == "calendars":
        return parse_config(raw, source, path.parent).label
    holidays = parse_holidays(raw, source)
    return f"{len(holidays.days)} days, {holidays.label}"


def check_file(path: Path, kind: Kind | None = None) -> Checked:
    """Load ``path`` as the worker would; raises ``OSError`` when it cannot be read and
    :class:`UnknownKind` when ``kind`` is not given and cannot be told from the file."""
    text = path.read_text(encoding="utf-8")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        problem = f"{path}: line {error.lineno} column {error.colno}: not JSON: {error.msg}"
        return Checked(path, kind, "", (problem,))
    found = kind or kind_of(raw)
    if found is None:
        raise UnknownKind(f"{path}: cannot tell which kind of data file this is")
    try:
        summary = f"{DESCRIPTIONS[found]}, {_summary(found, raw, path)}"
    except DataFileError as error:
        return Checked(path, found, "", tuple(error.lines()))
    except (ValueError, LookupError, TypeError) as error:
        return Checked(path, found, "", (f"{path}: {error}",))
    except OSError as error:  # a file this one names (a calendar's holidays file)
        problem = f"{path}: cannot read {error.filename}: {error.strerror}"
        return Checked(path, found, "", (problem,))
    return Checked(path, found, summary, ())
