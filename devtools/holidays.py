"""``samt124 calendar holidays``: official holidays from the ``holidays`` package, as a data file.

The calendar never reads the package; it reads the file this writes (``make holidays``), which is
reviewed and committed like code. Regenerating after an upgrade of the package shows, as a diff,
every date the new release moved, and the deadlines move only when that diff is committed.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta
from typing import Any

from samt124.domain.tehran_time import gregorian, jalali_day
from samt124.settings import Settings

DEFAULT_YEARS = "1395-1420"


def generate(country: str, first_year: int, last_year: int) -> dict[str, Any]:
    """The holidays file for Jalali years ``first_year`` .. ``last_year`` (inclusive)."""
    from importlib.metadata import version

    import holidays

    release = version("holidays")
    first = gregorian(first_year, 1, 1)
    last = gregorian(last_year + 1, 1, 1) - timedelta(days=1)
    years = list(range(first.year, last.year + 1))
    english = holidays.country_holidays(country, years=years, language="en_US")
    native = holidays.country_holidays(
        country, years=years, language=type(english).default_language
    )
    entries = []
    for day in sorted(d for d in english if first <= d <= last):
        local = jalali_day(day)
        entries.append(
            {
                "date": day.isoformat(),
                "jalali": f"{local.year:04d}-{local.month:02d}-{local.day:02d}",
                "name": english[day],
                "local_name": native.get(day, ""),
            }
        )
    return {
        "country": country,
        "version": f"{country}-{first_year}-{last_year}/holidays-{release}",
        "source": f"samt124 calendar holidays --country {country} "
        f"--years {first_year}-{last_year} (holidays {release})",
        "notes": [
            "Generated, then reviewed: edit a date here when a decree or a sighting moves it.",
            "The calendar reads only this file; a day outside first_day..last_day has no "
            "official holiday.",
        ],
        "first_day": first.isoformat(),
        "last_day": last.isoformat(),
        "holidays": entries,
    }


def render(document: dict[str, Any]) -> str:
    """The file's text: the header as indented JSON, one holiday a line (diffs stay readable)."""
    head = {k: v for k, v in document.items() if k != "holidays"}
    lines = json.dumps(head, ensure_ascii=False, indent=2).rstrip("}").rstrip().rstrip(",")
    rows = ",\n".join(
        "    " + json.dumps(entry, ensure_ascii=False) for entry in document["holidays"]
    )
    return f'{lines},\n  "holidays": [\n{rows}\n  ]\n}}\n'


def _years(text: str) -> tuple[int, int]:
    first, _, last = text.partition("-")
    try:
        span = int(first), int(last or first)
    except ValueError:
        message = f"expected Jalali years like 1400-1410, not {text!r}"
        raise argparse.ArgumentTypeError(message) from None
    if span[1] < span[0]:
        raise argparse.ArgumentTypeError(f"{text}: the last year comes before the first")
    return span


def register(commands: Any) -> None:
    calendar = commands.add_parser("calendar", help="the working calendar's data files")
    actions = calendar.add_subparsers(dest="calendar_command", required=True, metavar="ACTION")
    holidays = actions.add_parser(
        "holidays",
        help="print the official holidays file from the holidays package (make holidays)",
    )
    holidays.add_argument("--country", default="IR", help="ISO 3166-1 code (default IR)")
    holidays.add_argument(
        "--years",
        type=_years,
        default=_years(DEFAULT_YEARS),
        help=f"Jalali years, first-last (default {DEFAULT_YEARS})",
    )
    holidays.set_defaults(handler=cmd_holidays)


def cmd_holidays(args: argparse.Namespace, settings: Settings) -> int:
    first, last = args.years
    sys.stdout.write(render(generate(args.country, first, last)))
    return 0
