"""The wire format: Avro single-object encoding of samt124 events.

A message is ``C3 01``, the 8-byte CRC-64-AVRO fingerprint of the writer schema's Parsing
Canonical Form (little-endian, as the Avro specification stores it), then the Avro binary body.
Any Avro library can decode it given the ``.avsc`` files in ``schemas/``.

Readers resolve the writer schema by fingerprint among the current and every released schema,
and read with the current schema, so messages written under an older schema stay readable.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, cast

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.schema import fingerprint, to_parsing_canonical_form

from samt124.domain.events import EVENT_TYPES, Event, event_type, from_record, to_record
from schemas import RELEASED_DIR, SCHEMA_DIR

MARKER = b"\xc3\x01"
HEADER_SIZE = len(MARKER) + 8
_MILLIS = ("long", "timestamp-millis")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
# the instants and days a datetime / date can hold, as epoch milliseconds / days
MIN_MS = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) // _MS
MAX_MS = (datetime(9999, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC) - _EPOCH) // _MS
MIN_DAYS = date(1, 1, 1).toordinal() - date(1970, 1, 1).toordinal()
MAX_DAYS = date(9999, 12, 31).toordinal() - date(1970, 1, 1).toordinal()
_CANONICAL_UUID = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
).fullmatch


class DecodeError(Exception):
    """Bytes that are not a samt124 event; ``reason`` says why, for the dead-letter topic."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class _Writer:
    name: str
    schema: Any  # parsed by fastavro
    reader: Any  # the current schema to resolve into, or None when it is the writer itself


def load_schema(path: Path) -> tuple[str, Any, bytes]:
    """Record name, fastavro-parsed schema and single-object fingerprint of one ``.avsc``."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    parsed = parse_schema(raw)
    canonical = to_parsing_canonical_form(parsed)
    return raw["name"], parsed, bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))


def _without_logical_types(schema: Any) -> Any:
    """A copy of a JSON schema with every ``logicalType`` annotation left out."""
    if isinstance(schema, dict):
        return {k: _without_logical_types(v) for k, v in schema.items() if k != "logicalType"}
    if isinstance(schema, list):
        return [_without_logical_types(v) for v in schema]
    return schema


def _raw_schema(path: Path) -> Any:
    """The schema of one ``.avsc`` parsed without logical types (same fingerprint, same bytes)."""
    return parse_schema(_without_logical_types(json.loads(path.read_text(encoding="utf-8"))))


@dataclass(frozen=True)
class RawFields:
    """The top-level fields of a current record schema whose logical types a raw read leaves
    as their Avro values: timestamps as epoch milliseconds, dates as days since 1970-01-01."""

    fields: tuple[str, ...]  # every top-level field, in the schema's order
    millis: tuple[str, ...]  # timestamp-millis (an int, or None where the field is optional)
    days: tuple[str, ...]  # date (an int, or None where the field is optional)


def _raw_fields(schema: Any) -> RawFields:
    millis: list[str] = []
    days: list[str] = []
    for field in schema["fields"]:
        kind = field["type"]
        if isinstance(kind, list) and len(kind) == 2 and kind[0] == "null":
            kind = kind[1]
        logical = kind.get("logicalType") if isinstance(kind, dict) else None
        if logical == "timestamp-millis":
            millis.append(field["name"])
        elif logical == "date":
            days.append(field["name"])
    return RawFields(tuple(f["name"] for f in schema["fields"]), tuple(millis), tuple(days))


class Codec:
    """Encodes with the current schemas; decodes anything written by a current or released one."""

    def __init__(self, schema_dir: Path = SCHEMA_DIR, released_dir: Path | None = RELEASED_DIR):
        self._current: dict[str, tuple[Any, bytes]] = {}
        self._writers: dict[bytes, _Writer] = {}
        self._branches: dict[str, tuple[tuple[str, str, type], ...]] = {}
        self._headers: dict[str, tuple[tuple[str, bytes], ...]] = {}
        self._paths: dict[bytes, Path] = {}
        self._raw_writers: dict[bytes, _Writer] | None = None  # made on the first raw read
        self.raw_fields: dict[str, RawFields] = {}
        for path in sorted(schema_dir.glob("*.avsc")):
            name, parsed, fp = load_schema(path)
            self._current[name] = (parsed, fp)
            self._paths[fp] = path
            self.raw_fields[name] = _raw_fields(parsed)
            self._writers[fp] = _Writer(name, parsed, None)
            self._branches[name] = _optional_branches(parsed)
            self._headers[name] = (
                ("event-type", name.encode()),
                ("schema-fingerprint", fp.hex().encode()),
            )
        missing = sorted(set(EVENT_TYPES) - set(self._current))
        if missing:
            raise ValueError(f"no schema in {schema_dir} for: {', '.join(missing)}")
        released = sorted(released_dir.glob("*/*.avsc")) if released_dir else []
        for path in released:
            name, parsed, fp = load_schema(path)
            if fp not in self._writers and name in self._current:
                self._writers[fp] = _Writer(name, parsed, self._current[name][0])
                self._paths[fp] = path

    def fingerprint(self, name: str) -> bytes:
        """The fingerprint of the current schema of record ``name``."""
        return self._current[name][1]

    def headers(self, name: str) -> list[tuple[str, bytes]]:
        """Kafka headers of a record ``name``: the name and its current schema's fingerprint."""
        return list(self._headers[name])

    def encode(self, event: Event) -> bytes:
        name = event_type(event)
        schema, fp = self._current[name]
        record = to_record(event)
        for field, branch, kind in self._branches[name]:
            value = record.get(field)
            if type(value) is kind:
                record[field] = (branch, value)
        out = io.BytesIO()
        out.write(MARKER)
        out.write(fp)
        schemaless_writer(out, schema, record)
        return out.getvalue()

    def decode(self, data: bytes) -> Event:
        name, record = self.decode_record(data)
        try:
            return from_record(name, record)
        except Exception as exc:
            raise DecodeError(f"{name} record does not fit the event: {exc}") from exc

    def decode_record(self, data: bytes) -> tuple[str, dict[str, Any]]:
        """The record name and the Avro record of ``data``, read with the current schema.

        For readers that need a few fields of many messages (the sink) and not the event.
        """
        return self._read(data, self._writers)

    def decode_raw(self, data: bytes) -> tuple[str, dict[str, Any]]:
        """:meth:`decode_record` with the logical types left as Avro stores them: timestamps
        as epoch milliseconds and dates as days since 1970-01-01 (:attr:`raw_fields` names
        them per record), ``event_id`` as its canonical text.

        Accepts and refuses exactly what :meth:`decode_record` does, with the same reasons: a
        record whose times or dates a ``datetime`` / ``date`` cannot hold, or whose event id
        is not canonical UUID text, is read again with the logical types, which raises the
        same :class:`DecodeError` or gives the values to convert back.
        """
        writers = self._raw_writers
        if writers is None:
            writers = self._raw_writers = {
                fp: _Writer(
                    writer.name,
                    _raw_schema(self._paths[fp]),
                    None
                    if writer.reader is None
                    else _raw_schema(self._paths[self._current[writer.name][1]]),
                )
                for fp, writer in self._writers.items()
            }
        name, record = self._read(data, writers)
        fields = self.raw_fields[name]
        plain = _CANONICAL_UUID(record["event_id"]) is not None
        for field in fields.millis:
            ms = record[field]
            if ms is not None and not MIN_MS <= ms <= MAX_MS:
                plain = False
        for field in fields.days:
            days = record[field]
            if days is not None and not MIN_DAYS <= days <= MAX_DAYS:
                plain = False
        if plain:
            return name, record
        name, logical = self.decode_record(data)
        for field in fields.millis:
            if logical[field] is not None:
                logical[field] = (logical[field] - _EPOCH) // _MS
        for field in fields.days:
            if logical[field] is not None:
                logical[field] = (logical[field] - _EPOCH.date()).days
        return name, logical

    def _read(self, data: bytes, writers: dict[bytes, _Writer]) -> tuple[str, dict[str, Any]]:
        if len(data) < HEADER_SIZE:
            raise DecodeError(f"truncated header: {len(data)} bytes, need {HEADER_SIZE}")
        if data[:2] != MARKER:
            raise DecodeError(f"bad marker {data[:2].hex()}, expected {MARKER.hex()}")
        writer = writers.get(data[2:HEADER_SIZE])
        if writer is None:
            raise DecodeError(f"unknown schema fingerprint {data[2:HEADER_SIZE].hex()}")
        body = io.BytesIO(data)
        body.seek(HEADER_SIZE)
        try:
            record = cast(dict[str, Any], schemaless_reader(body, writer.schema, writer.reader))
        except Exception as exc:
            reason = f"undecodable {writer.name} body: {type(exc).__name__}: {exc}"
            raise DecodeError(reason) from exc
        if body.tell() != len(data):
            raise DecodeError(f"{len(data) - body.tell()} trailing bytes after {writer.name} body")
        record["event_id"] = str(record["event_id"])  # fastavro reads logicalType uuid as UUID
        return writer.name, record


def _optional_branches(schema: Any) -> tuple[tuple[str, str, type], ...]:
    """``(field, branch, type)`` for the top-level optional fields ``["null", X]`` of a parsed
    record schema where X is a string or a timestamp, and ``type`` the one Python type X takes.

    Given ``(branch, value)`` fastavro writes that branch at once instead of trying each branch
    of the union in turn; for a value of exactly ``type`` it would have chosen the same one.
    """
    found: list[tuple[str, str, type]] = []
    for field in schema["fields"]:
        union = field["type"]
        if not (isinstance(union, list) and len(union) == 2 and union[0] == "null"):
            continue
        other = union[1]
        if other == "string":
            found.append((field["name"], "string", str))
        elif isinstance(other, dict) and (other.get("type"), other.get("logicalType")) == _MILLIS:
            found.append((field["name"], "long", datetime))
    return tuple(found)


@cache
def default_codec() -> Codec:
    """The codec over ``schemas/`` and ``schemas/released/`` (parsed once, on first use)."""
    return Codec()


def encode(event: Event) -> bytes:
    """Single-object encoding of ``event`` with its current schema."""
    return default_codec().encode(event)


def decode(data: bytes) -> Event:
    """The event in ``data``; raises :class:`DecodeError` (and nothing else) on any bad input."""
    return default_codec().decode(data)


def headers(event: Event) -> list[tuple[str, bytes]]:
    """Kafka headers: the record name and the hex fingerprint of its current schema."""
    return default_codec().headers(event_type(event))


def key(event: Event) -> bytes:
    """Kafka key: the request id, so all of a request's events land in one partition."""
    return event.request_id.encode()


__all__ = [
    "HEADER_SIZE",
    "MARKER",
    "Codec",
    "DecodeError",
    "RawFields",
    "decode",
    "default_codec",
    "encode",
    "headers",
    "key",
    "load_schema",
]
