"""``samt124 dlq list|show|replay``: the dead letters the sink loaded, and re-sending a fix.

``list`` and ``show`` read ``dead_letters`` in ClickHouse (read-only). ``replay`` takes the
fixed event from a JSON file (one object, as ``samt124 publish`` reads them) or from the
original with fields edited (``--set province=IR-30``), validates it as every publication is
validated, and publishes it to ``samt124.intake`` with ``replay-of`` (the dead letter's place)
and ``replay-of-event-id`` (the original's event id) headers for audit. A dead letter is named
by its partition and offset on the dead-letter topic, ``2:17``.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from consumers.analytics import dead_letters as stored
from consumers.analytics.reports import ReportParams, instant_label
from consumers.clickhouse.engine import opened
from samt124 import arguments, reach
from samt124.commands.consumers import FORMATS, _guarded, render
from samt124.contract import dead_letters as dl
from samt124.contract.wire import DecodeError, decode
from samt124.errors import CommandError, CommandFailed
from samt124.kafka.topics import Topics
from samt124.settings import Settings


def dead_letter_id(text: str) -> tuple[int, int]:
    """``2:17`` (partition and offset on the dead-letter topic), as ``dlq list`` shows them."""
    partition, sep, offset = text.strip().partition(":")
    if not sep or not partition.isdecimal() or not offset.isdecimal():
        raise argparse.ArgumentTypeError(
            f"expected PARTITION:OFFSET of the dead-letter topic, e.g. 2:17; got {text!r}"
        )
    return int(partition), int(offset)


def field_edit(text: str) -> tuple[str, str]:
    """``province=IR-30`` or ``requester.national_id=0012345678``."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected FIELD=VALUE, e.g. province=IR-30; got {text!r}")
    return name.strip(), value


def _label(settings: Settings) -> Any:
    params = ReportParams()
    return lambda t: instant_label(t, params)


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    filters = stored.Filters(
        kind=args.kind,
        reason=args.reason,
        request_id=args.request_id,
        source_topic=args.source_topic,
        since=args.since,
        until=args.until,
        limit=args.limit,
    )
    reach.clickhouse(settings)
    topic = Topics(settings.topic_namespace).dlq
    with opened(settings.clickhouse, readonly=True) as engine:
        columns, rows = stored.listing(engine, topic, filters, _label(settings))
    print(render(columns, rows, args.format))
    return 0


def _load(settings: Settings, where: tuple[int, int]) -> stored.Stored:
    reach.clickhouse(settings)
    topic = Topics(settings.topic_namespace).dlq
    with opened(settings.clickhouse, readonly=True) as engine:
        letter = stored.one(engine, topic, *where)
    if letter is None:
        raise CommandFailed(
            f"no dead letter at {dl.place(topic, *where)} in {settings.clickhouse.describe()}",
            "see `samt124 dlq list` for those stored; the sink loads new ones within seconds",
        )
    return letter


def describe(letter: stored.Stored, label: Any) -> list[str]:
    """What ``dlq show`` prints: the place, why, the headers and the original."""
    lines = [
        f"dead letter   {dl.place(letter.topic, letter.partition, letter.offset)}",
        f"dead at       {label(letter.dead_at)} Tehran time",
        f"reason        {letter.reason}",
        f"kind          {letter.reason_kind}"
        + (f" ({letter.error_type})" if letter.error_type else ""),
        "original at   "
        + dl.place(letter.source_topic, letter.source_partition, letter.source_offset),
        f"key           {_text_or_hex(letter.key)}",
        "headers",
    ]
    headers = json.loads(letter.headers or "{}")
    lines += [f"  {name}: {value}" for name, value in sorted(headers.items())]
    try:
        event = decode(letter.original)
    except DecodeError as error:
        lines.append(f"original ({len(letter.original)} bytes, does not decode: {error.reason})")
        lines.append(letter.original_hex)
    else:
        from producers.files import to_json_line

        lines.append(f"original ({letter.event_type}, as a line for `samt124 publish`)")
        lines.append(to_json_line(event))
    return lines


def _text_or_hex(raw: bytes | None) -> str:
    if raw is None:
        return "(none)"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return f"0x{raw.hex()}"
    return text if text.isprintable() else f"0x{raw.hex()}"


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    letter = _load(settings, args.id)
    print("\n".join(describe(letter, _label(settings))))
    return 0


def edited(original: dict[str, Any], edits: list[tuple[str, str]]) -> dict[str, Any]:
    """The original's JSON object with ``FIELD=VALUE`` edits: a dotted name reaches into the
    requester; a value is text, a whole number where the field holds one, ``null`` clears it."""
    fixed: dict[str, Any] = json.loads(json.dumps(original))
    for name, text in edits:
        target = fixed
        *path, last = name.split(".")
        for part in path:
            if not isinstance(target.get(part), dict):
                raise CommandError(f"argument --set: {name}: {part} is not an object of the event")
            target = target[part]
        value: Any = text
        if text == "null":
            value = None
        elif isinstance(target.get(last), int) and not isinstance(target.get(last), bool):
            try:
                value = int(text)
            except ValueError:
                raise CommandError(
                    f"argument --set: {name} is a whole number, got {text!r}"
                ) from None
        target[last] = value
    return fixed


def fixed_line(letter: stored.Stored, file: Path | None, edits: list[tuple[str, str]]) -> str:
    """The fixed event as one JSON line: the file's object, or the original with the edits."""
    if file is not None:
        try:
            obj = json.loads(file.read_text(encoding="utf-8-sig"))
        except (OSError, UnicodeDecodeError) as error:
            raise CommandError(f"argument --file: cannot read {file}: {error}") from error
        except json.JSONDecodeError as error:
            raise CommandError(f"argument --file: {file} is not JSON: {error.msg}") from error
        if not isinstance(obj, dict):
            raise CommandError(f"argument --file: {file} holds no JSON object")
        return json.dumps(edited(obj, edits), ensure_ascii=False)
    try:
        event = decode(letter.original)
    except DecodeError as error:
        raise CommandError(
            f"the original does not decode ({error.reason}): give the fixed event with --file"
        ) from None
    from producers.files import to_json_line

    return json.dumps(edited(json.loads(to_json_line(event)), edits), ensure_ascii=False)


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    from producers.files import parse_jsonl
    from producers.publisher import Publisher
    from samt124.domain.validation import ValidationFailed

    if args.file is None and not args.set:
        raise CommandError("say what the fix is: --file FIXED.json, or --set FIELD=VALUE")
    letter = _load(settings, args.id)
    now = datetime.now(UTC)
    (line,) = parse_jsonl(fixed_line(letter, args.file, args.set or []), now=now)
    if line.event is None:
        for error in line.errors:
            print(f"fixed event: {error}", file=sys.stderr)
        print("the fixed event does not parse: nothing was sent", file=sys.stderr)
        return 1
    place = dl.place(letter.topic, letter.partition, letter.offset)
    audit = [(dl.REPLAY_OF, place.encode())]
    if letter.event_id:
        audit.append((dl.REPLAY_OF_EVENT_ID, letter.event_id.encode()))
    reach.kafka(settings)
    with Publisher(settings, now=lambda: now) as publisher:
        try:
            confirmed = publisher.publish(line.event, extra_headers=audit)
        except ValidationFailed as invalid:
            for error in invalid.errors:
                print(f"fixed event: {error}", file=sys.stderr)
            print("the fixed event is invalid: nothing was sent", file=sys.stderr)
            return 1
    print(
        f"replayed {place} as {line.event.event_id} to"
        f" {dl.place(confirmed.topic, confirmed.partition, confirmed.offset)}"
    )
    return 0


def register(commands: Any) -> None:
    """Add ``samt124 dlq`` and its subcommands."""
    dlq = commands.add_parser("dlq", help="list, show and replay dead letters")
    actions = dlq.add_subparsers(dest="action", required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="the newest dead letters first")
    listing.add_argument("--kind", choices=dl.KINDS, help="the kind of reason")
    listing.add_argument("--reason", help="a part of the reason's text")
    listing.add_argument("--request-id", help="of the original event")
    listing.add_argument("--source-topic", help="where the original was read")
    listing.add_argument("--since", type=arguments.instant, help="dead-lettered from (ISO 8601)")
    listing.add_argument("--until", type=arguments.instant, help="dead-lettered before")
    listing.add_argument("--limit", type=arguments.count, default=50, help="at most (50)")
    listing.add_argument("--format", choices=FORMATS, default="table")
    listing.set_defaults(handler=_guarded(cmd_list))

    show = actions.add_parser("show", help="one dead letter: why, its headers, the original")
    show.add_argument("id", type=dead_letter_id, help="PARTITION:OFFSET, as `dlq list` shows")
    show.set_defaults(handler=_guarded(cmd_show))

    replay = actions.add_parser(
        "replay", help="publish a fixed dead letter to the intake (validated, audited)"
    )
    replay.add_argument("id", type=dead_letter_id, help="PARTITION:OFFSET, as `dlq list` shows")
    replay.add_argument(
        "--file",
        type=arguments.readable_file,
        help="the fixed event: one JSON object, as `dlq show` prints the original",
    )
    replay.add_argument(
        "--set",
        action="append",
        type=field_edit,
        metavar="FIELD=VALUE",
        help="edit a field of the original (or of --file's event); repeatable",
    )
    replay.set_defaults(handler=_guarded(cmd_replay))
