"""Reading events from files for ``samt124 publish``: JSON Lines and CSV.

JSON Lines: one object per line, ``{"type": "RequestSubmitted", "event_id": ..., ...}`` with
ISO-8601 times carrying their offset and ISO dates. ``event_id`` and ``recorded_at`` may be left
out: the id is then derived from the line's content (UUIDv5), so publishing the same file twice
publishes the same facts, and samt124's router drops the repeats.

CSV: the provincial secretariats' back-fill at the cutover, one ``LetterRegistered`` per row,
columns ``registry_number, sender_organization, letter_date, category, province, subject, body``
and optionally ``priority, attachment_count, request_id, occurred_at, event_id``. Dates may be
Gregorian (``2025-10-07``) or Jalali (``1404/07/15``).

Parsing is pure: every line becomes an event or field-level errors with its line number.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import types
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import jdatetime

from samt124.domain.events import EVENT_TYPES, Event, Requester
from samt124.domain.validation import FieldError, validate

FILE_NAMESPACE = uuid.UUID("5a3d6c1e-8b1f-4c57-9d0e-124000000001")
CSV_REQUIRED = (
    "registry_number",
    "sender_organization",
    "letter_date",
    "category",
    "province",
    "subject",
    "body",
)


@dataclass(frozen=True)
class Line:
    """One line of an input file: the event it holds, or why it holds none."""

    number: int
    event: Event | None
    errors: tuple[FieldError, ...] = ()

    @property
    def ok(self) -> bool:
        return self.event is not None and not self.errors


def read(path: Path, *, now: datetime) -> list[Line]:
    """Parse and validate every line of a ``.jsonl``/``.json`` or ``.csv`` file."""
    text = path.read_text(encoding="utf-8-sig")
    lines = (
        parse_csv(text, now=now) if path.suffix.lower() == ".csv" else parse_jsonl(text, now=now)
    )
    return [_validated(line, now) for line in lines]


def _validated(line: Line, now: datetime) -> Line:
    if line.event is None:
        return line
    errors = validate(line.event, now=now)
    return dataclasses.replace(line, errors=tuple(errors)) if errors else line


def parse_jsonl(text: str, *, now: datetime) -> Iterator[Line]:
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as error:
            yield Line(number, None, (FieldError("(line)", f"not JSON: {error.msg}"),))
            continue
        if not isinstance(obj, dict):
            yield Line(number, None, (FieldError("(line)", "not a JSON object"),))
            continue
        yield _from_object(number, obj, now)


def parse_csv(text: str, *, now: datetime) -> Iterator[Line]:
    reader = csv.DictReader(io.StringIO(text))
    missing = [name for name in CSV_REQUIRED if name not in (reader.fieldnames or [])]
    if missing:
        yield Line(1, None, (FieldError("(header)", f"missing columns: {', '.join(missing)}"),))
        return
    for row in reader:
        number = reader.line_num
        obj: dict[str, Any] = {k: v for k, v in row.items() if k and v not in (None, "")}
        obj["type"] = "LetterRegistered"
        obj.setdefault("priority", "NORMAL")
        obj.setdefault("source", "secretariat-backfill")
        obj.setdefault(
            "request_id", f"letter:{obj.get('province', '')}:{obj.get('registry_number', '')}"
        )
        if "letter_date" in obj:
            obj["letter_date"] = _date_text(str(obj["letter_date"]))
        obj.setdefault("occurred_at", f"{obj.get('letter_date', '')}T09:00:00+03:30")
        yield _from_object(number, obj, now)


def _date_text(value: str) -> str:
    """ISO date from Gregorian ``2025-10-07`` or Jalali ``1404/07/15``."""
    if "/" in value:
        year, month, day = (int(part) for part in value.split("/"))
        return jdatetime.date(year, month, day).togregorian().isoformat()  # type: ignore[no-any-return]
    return value


def _from_object(number: int, obj: dict[str, Any], now: datetime) -> Line:
    name = obj.get("type")
    cls = EVENT_TYPES.get(str(name))
    if cls is None:
        known = ", ".join(sorted(EVENT_TYPES))
        return Line(
            number, None, (FieldError("type", f"unknown event type {name!r}; one of {known}"),)
        )
    content = {k: v for k, v in obj.items() if k not in ("type", "event_id", "recorded_at")}
    values = dict(content)
    values.setdefault("event_id", obj.get("event_id") or _derived_id(str(name), content))
    values.setdefault("recorded_at", obj.get("recorded_at") or now.isoformat())
    errors: list[FieldError] = []
    converted = _convert(cls, values, "", errors)
    if errors:
        return Line(number, None, tuple(errors))
    try:
        return Line(number, cls(**converted))
    except TypeError as error:
        return Line(number, None, (FieldError("(line)", str(error)),))


def _derived_id(name: str, content: dict[str, Any]) -> str:
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False)
    return str(uuid.uuid5(FILE_NAMESPACE, f"{name}|{canonical}"))


def _convert(
    cls: type[Any], values: dict[str, Any], prefix: str, errors: list[FieldError]
) -> dict[str, Any]:
    hints = get_type_hints(cls)
    out: dict[str, Any] = {}
    known = {field.name for field in dataclasses.fields(cls)}
    for key in sorted(set(values) - known):
        errors.append(FieldError(prefix + key, "unknown field"))
    for field in dataclasses.fields(cls):
        name = prefix + field.name
        if field.name not in values:
            if field.default is dataclasses.MISSING:
                errors.append(FieldError(name, "required"))
            continue
        value = values[field.name]
        hint = _without_none(hints[field.name])
        try:
            out[field.name] = _value(hint, value, name, errors)
        except (TypeError, ValueError) as error:
            errors.append(FieldError(name, str(error)))
    return out


def _without_none(hint: Any) -> Any:
    if get_origin(hint) in (Union, types.UnionType):
        args = [arg for arg in get_args(hint) if arg is not type(None)]
        return args[0]
    return hint


def _value(hint: Any, value: Any, name: str, errors: list[FieldError]) -> Any:
    if value is None:
        return None
    if hint is datetime:
        parsed = datetime.fromisoformat(str(value))
        if parsed.tzinfo is None:
            raise ValueError("time has no UTC offset (write e.g. 2025-03-19T10:30:00+03:30)")
        return parsed.astimezone(UTC)
    if hint is date:
        return date.fromisoformat(str(value))
    if hint is int:
        return int(value)
    if hint is Requester:
        if not isinstance(value, dict):
            raise TypeError("must be an object")
        return Requester(**_convert(Requester, value, name + ".", errors))
    return str(value) if not isinstance(value, str) else value


def to_json_line(event: Event) -> str:
    """One JSON Lines line for ``event`` (the inverse of reading it)."""
    obj: dict[str, Any] = {"type": type(event).__name__}
    for key, value in dataclasses.asdict(event).items():
        obj[key] = value.isoformat() if isinstance(value, datetime | date) else value
    return json.dumps(obj, ensure_ascii=False)


__all__ = ["Line", "parse_csv", "parse_jsonl", "read", "to_json_line"]
