"""Validation at the boundary: every rule an event must meet before it enters samt124.

:func:`validate` is pure and returns field-level errors (an empty list means valid); nested
fields are named with a dot, e.g. ``requester.national_id``.
"""

from __future__ import annotations

import dataclasses
import re
import types
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from samt124.domain import codes
from samt124.domain.catalogue import CATALOGUE
from samt124.domain.events import EVENT_TYPES, Event, OfficeClosureAnnounced, Requester
from samt124.domain.provinces import PROVINCES

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
CLOCK_SKEW = timedelta(minutes=5)
MAX_DAYS_AHEAD = timedelta(days=366)  # closure days and due times may lie in the future
DEFAULT_MAX_LENGTH = 300
MAX_LENGTH = {
    "body": 20_000,
    "message": 20_000,
    "resolution_note": 20_000,
    "note": 20_000,
    "reason": 2_000,
    "email": 254,
    "phone": 20,
}
UUID_FIELDS = frozenset({"event_id", "causation_id"})
PROVINCE_FIELDS = frozenset({"province", "to_province"})
EVENT_TIMES = frozenset({"occurred_at", "recorded_at"})  # facts cannot happen in the future
PAST_DAYS = frozenset({"letter_date"})
INT_RANGES = {
    "satisfaction": (1, 5),
    "attachment_count": (0, 100),
    "cycle": (1, 1_000),
    "threshold_percent": (1, 100),
}
NATIONAL_ID = re.compile(r"\d{10}|\d{11}")
PHONE = re.compile(r"\+?\d{4,19}")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
# The form ``str(uuid.UUID(...))`` writes, which ``uuid.UUID`` always reads: checked first,
# the slower parse only for ids in another form (upper case, braces, ``urn:uuid:``) or none.
CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class ValidationFailed(Exception):
    """An event broke validation rules; ``errors`` lists every broken rule."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("invalid event: " + "; ".join(str(error) for error in errors))
        self.errors = errors


@dataclasses.dataclass(frozen=True, slots=True)
class _Field:
    """What the checks need of a field, worked out once per class rather than per value."""

    name: str
    hint: Any  # the type, without ``| None``
    optional: bool
    symbols: tuple[str, ...] | None  # the allowed values of a Literal
    nested: bool  # a record of its own (checked field by field)


def _fields(cls: type[Any]) -> tuple[_Field, ...]:
    """The fields of an event or nested record class."""
    hints = get_type_hints(cls)
    out = []
    for field in dataclasses.fields(cls):
        hint = hints[field.name]
        args = get_args(hint)
        optional = get_origin(hint) in (Union, types.UnionType) and type(None) in args
        if optional:
            hint = next(arg for arg in args if arg is not type(None))
        symbols = get_args(hint) if get_origin(hint) is Literal else None
        nested = dataclasses.is_dataclass(hint)
        out.append(_Field(field.name, hint, optional, symbols, nested))
    return tuple(out)


_FIELDS: dict[type[Any], tuple[_Field, ...]] = {
    cls: _fields(cls) for cls in (*EVENT_TYPES.values(), Requester)
}


def validate(event: Event, *, now: datetime) -> list[FieldError]:
    """Every rule ``event`` breaks, as field-level errors; ``now`` bounds future timestamps."""
    errors = _check_record(event, "", now)
    if isinstance(event, OfficeClosureAnnounced) and not errors:
        errors.extend(_check_closure(event))
    return errors


def _check_closure(event: OfficeClosureAnnounced) -> list[FieldError]:
    if event.first_day > event.last_day:
        return [FieldError("last_day", "must not be before first_day")]
    return []


def _check_record(record: object, prefix: str, now: datetime) -> list[FieldError]:
    errors: list[FieldError] = []
    for field in _FIELDS[type(record)]:
        value = getattr(record, field.name)
        if value is None and field.optional:
            continue
        message = _check_value(field, value, now)
        if message is not None:
            errors.append(FieldError(prefix + field.name, message))
        elif field.nested:
            errors.extend(_check_record(value, f"{prefix}{field.name}.", now))
    return errors


def _check_value(field: _Field, value: object, now: datetime) -> str | None:
    name, hint = field.name, field.hint
    if field.symbols is not None:
        return None if value in field.symbols else f"must be one of {', '.join(field.symbols)}"
    wrong_type = not isinstance(value, hint) or isinstance(value, bool)
    if wrong_type or (hint is date and isinstance(value, datetime)):
        return f"must be {hint.__name__}, got {type(value).__name__}"
    if isinstance(value, str):
        return _check_text(name, value)
    if isinstance(value, datetime):
        return _check_time(name, value, now)
    if isinstance(value, date):
        latest = (now + (CLOCK_SKEW if name in PAST_DAYS else MAX_DAYS_AHEAD)).date()
        if value < EARLIEST.date() or value > latest:
            return f"must be between {EARLIEST.date()} and {latest}"
    if isinstance(value, int) and name in INT_RANGES:
        low, high = INT_RANGES[name]
        if not low <= value <= high:
            return f"must be between {low} and {high}, got {value}"
    return None


def _check_text(name: str, value: str) -> str | None:
    if not value.strip():
        return "must not be empty"
    limit = MAX_LENGTH.get(name, DEFAULT_MAX_LENGTH)
    if len(value) > limit:
        return f"must be at most {limit} characters, got {len(value)}"
    if name in UUID_FIELDS and not CANONICAL_UUID.fullmatch(value):
        try:
            uuid.UUID(value)
        except ValueError:
            return f"must be a UUID, got {value[:40]!r}"
    if name in PROVINCE_FIELDS and value not in PROVINCES:
        return f"unknown province {value[:40]!r}, expected an ISO 3166-2:IR code IR-00..IR-30"
    if name == "category" and value not in CATALOGUE:
        return codes.unknown("category", value, CATALOGUE)
    if name == "national_id" and not NATIONAL_ID.fullmatch(value):
        return "must be 10 digits (national code) or 11 digits (national id of a unit)"
    if name == "phone" and not PHONE.fullmatch(value):
        return "must be digits, optionally after +"
    if name == "email" and not EMAIL.fullmatch(value):
        return "must be an e-mail address"
    return None


def _check_time(name: str, value: datetime, now: datetime) -> str | None:
    if value.tzinfo is None or value.utcoffset() is None:
        return "must be timezone-aware"
    if value < EARLIEST:
        return f"must not be before {EARLIEST.date()}"
    latest = now + (CLOCK_SKEW if name in EVENT_TIMES else MAX_DAYS_AHEAD)
    if value > latest:
        return f"must not be after {latest.isoformat()} (now {now.isoformat()})"
    return None


__all__ = ["FieldError", "ValidationFailed", "validate"]
