"""``samt124 publish`` and ``samt124 simulate``."""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from samt124 import arguments, reach
from samt124.domain.events import Event
from samt124.errors import CommandError
from samt124.settings import Settings

DEFAULT_START = "2025-05-25T07:00:00+03:30"  # 4 Khordad 1404: a week before the Alborz MoU
CHUNK = 5_000


def register(commands: Any) -> None:
    publish = commands.add_parser(
        "publish", help="publish a JSON Lines or CSV file of events to the intake topic"
    )
    publish.add_argument(
        "file",
        type=arguments.readable_file,
        help=".jsonl (any event) or .csv (secretariat letters)",
    )
    publish.add_argument(
        "--reject-file",
        type=arguments.writable_file,
        help="send the valid lines and write the invalid ones here (default: send nothing "
        "when any line is invalid)",
    )
    publish.set_defaults(handler=cmd_publish)

    simulate = commands.add_parser("simulate", help="publish realistic national 124 traffic")
    simulate.add_argument("--count", type=arguments.count, default=10_000, help="events to publish")
    simulate.add_argument(
        "--seed", type=arguments.natural, default=124, help="same seed, same events"
    )
    simulate.add_argument(
        "--rate",
        type=arguments.rate,
        default=0.0,
        help="events per second (0: as fast as possible)",
    )
    simulate.add_argument(
        "--start",
        type=arguments.instant,
        default=arguments.instant(DEFAULT_START),
        help=f"simulated time of the first event, ISO-8601 with offset (default {DEFAULT_START})",
    )
    simulate.add_argument(
        "--recent",
        action="store_true",
        help="end the simulated traffic about now: start it (overriding --start) where all "
        "--count events have happened by now",
    )
    simulate.add_argument(
        "--requests-per-day",
        type=arguments.positive,
        default=2_000.0,
        help="mean national intake",
    )
    simulate.add_argument(
        "--output",
        type=arguments.writable_file,
        help="write JSON Lines here instead of publishing to Kafka",
    )
    simulate.add_argument("--quiet", action="store_true", help="no progress lines")
    simulate.set_defaults(handler=cmd_simulate)


def cmd_publish(args: argparse.Namespace, settings: Settings) -> int:
    from producers.files import read
    from producers.publisher import Publisher

    try:
        lines = read(args.file, now=datetime.now(UTC))
    except (OSError, UnicodeDecodeError) as unreadable:
        problem = f"argument file: cannot read {args.file}: {_why(unreadable)}"
        raise CommandError(problem) from unreadable
    bad = [line for line in lines if not line.ok]
    for line in bad:
        for error in line.errors:
            print(f"{args.file}:{line.number}: {error}", file=sys.stderr)
    if bad and args.reject_file is None:
        print(
            f"{len(bad)} invalid line(s) in {args.file}: nothing was sent "
            "(fix them, or use --reject-file to send the valid lines)",
            file=sys.stderr,
        )
        return 1
    if bad:
        _write_rejects(args.file, args.reject_file, {line.number for line in bad})
    good = [line.event for line in lines if line.ok and line.event is not None]
    reach.kafka(settings)
    with Publisher(settings, check=False) as publisher:
        sent = publisher.publish_many(good)
    print(
        f"published {sent} event(s) to {publisher.topic}"
        + (f"; {len(bad)} rejected into {args.reject_file}" if bad else "")
    )
    return 0


def _why(error: Exception) -> str:
    if isinstance(error, UnicodeDecodeError):
        return f"not UTF-8 text (byte {error.start})"
    return str(getattr(error, "strerror", None) or error)


def _write_rejects(source: Path, target: Path, numbers: set[int]) -> None:
    lines = source.read_text(encoding="utf-8-sig").splitlines(keepends=True)
    keep_header = source.suffix.lower() == ".csv"
    with target.open("w", encoding="utf-8") as out:
        for number, text in enumerate(lines, start=1):
            if number in numbers or (keep_header and number == 1):
                out.write(text if text.endswith("\n") else text + "\n")


def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    from producers.simulator import simulate
    from samt124.domain.routing import referral_bodies

    start: datetime = args.start
    if args.recent:
        from producers.recent import start_ending_by

        start = start_ending_by(
            datetime.now(UTC), args.seed, args.count, requests_per_day=args.requests_per_day
        )
    events: Iterable[Event] = simulate(
        args.seed,
        args.count,
        start,
        requests_per_day=args.requests_per_day,
        body_for=referral_bodies(),
    )
    if args.output:
        from producers.files import to_json_line

        with args.output.open("w", encoding="utf-8") as out:
            for event in events:
                out.write(to_json_line(event) + "\n")
        return 0
    from producers.publisher import Publisher

    reach.kafka(settings)
    started = time.monotonic()
    sent = 0
    with Publisher(settings) as publisher:
        size = CHUNK if args.rate <= 0 else max(1, min(CHUNK, int(args.rate / 5)))
        for chunk in _chunks(_paced(events, args.rate), size):
            sent += publisher.publish_many(chunk)
            if not args.quiet:
                elapsed = time.monotonic() - started
                print(
                    f"\rpublished {sent:,} / {args.count:,} events ({sent / elapsed:,.0f}/s)",
                    end="",
                    file=sys.stderr,
                    flush=True,
                )
    elapsed = time.monotonic() - started
    if not args.quiet:
        print(file=sys.stderr)
    print(f"published {sent} events in {elapsed:.1f} s ({sent / elapsed:,.0f} events/s)")
    return 0


def _paced(events: Iterable[Event], rate: float) -> Iterator[Event]:
    if rate <= 0:
        yield from events
        return
    started = time.monotonic()
    for count, event in enumerate(events):
        ahead = count / rate - (time.monotonic() - started)
        if ahead > 0.05:
            time.sleep(ahead)
        yield event


def _chunks(events: Iterable[Event], size: int) -> Iterator[list[Event]]:
    iterator = iter(events)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk
