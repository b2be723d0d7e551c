"""The wire format: golden bytes, round trips, Apache Avro interoperability, hostile input."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import shutil
import types
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import avro.io
import avro.schema
import pytest
from fastavro import schemaless_writer
from hypothesis import given, settings
from hypothesis import strategies as st

from samt124.contract import wire
from samt124.contract.wire import Codec, DecodeError
from samt124.domain.events import (
    EVENT_TYPES,
    Event,
    Long,
    RequestClosed,
    Requester,
    RequestSubmitted,
    to_record,
)
from schemas import RELEASED_DIR, SCHEMA_DIR

SUBMITTED = RequestSubmitted(
    event_id="6f1c2d3e-4b5a-4c6d-8e7f-901a2b3c4d5e",
    request_id="124-IR-30-000001",
    occurred_at=datetime(2025, 10, 22, 6, 30, 0, 123000, tzinfo=UTC),
    recorded_at=datetime(2025, 10, 22, 6, 30, 1, tzinfo=UTC),
    source="call-centre-124",
    actor="operator-7",
    channel="PHONE_124",
    requester=Requester(national_id="10861234567", name="شرکت نمونه", phone="09121234567"),
    category="IND-RAW-MATERIAL",
    province="IR-30",
    subject="کمبود مواد اولیه",
    body="تامین ورق فولادی",
    priority="HIGH",
    attachment_count=2,
)
# Computed once, then checked by hand: the C3 01 marker, the fingerprint of RequestSubmitted.avsc
# (also checked against Apache Avro below), then the body: 48 = length 36 of the event id,
# ..., 00 = PHONE_124, 16 = length 11 of the national id, ..., 04 = HIGH, 04 = 2 attachments.
MARKER_AND_FINGERPRINT = "c301" + "029e261961a6d150"
BODY_HEX = (
    "4836663163326433652d346235612d346336642d386537662d393031613262336334643565203132"
    "342d49522d33302d303030303031f6cae1a9c166d0d8e1a9c1661e63616c6c2d63656e7472652d31"
    "323402146f70657261746f722d3700000016313038363132333435363726d8b4d8b1daa9d8aa20d9"
    "86d985d988d986d987021630393132313233343536370020494e442d5241572d4d4154455249414c"
    "0a49522d33303cdaa9d985d8a8d988d8af20d985d988d8a7d8af20d8a7d988d984db8cd9873cd8aa"
    "d8a7d985db8cd98620d988d8b1d98220d981d988d984d8a7d8afdb8c0404"
)


def _strategy(hint: Any) -> st.SearchStrategy[Any]:
    if get_origin(hint) is Literal:
        return st.sampled_from(get_args(hint))
    if get_origin(hint) in (Union, types.UnionType):
        (inner,) = (arg for arg in get_args(hint) if arg is not type(None))
        return st.none() | _strategy(inner)
    if dataclasses.is_dataclass(hint):
        return builds(hint)
    return {
        str: st.text(max_size=40),
        bool: st.booleans(),
        Long: st.integers(-(2**63), 2**63 - 1),
        int: st.integers(-(2**31), 2**31 - 1),
        date: st.dates(min_value=date(1900, 1, 1)),
        datetime: st.datetimes(min_value=datetime(1900, 1, 1), timezones=st.just(UTC)).map(
            lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000)
        ),
    }[hint]


def builds(cls: Any) -> st.SearchStrategy[Any]:
    """Any instance of an event (or nested record) class that the Avro types can carry."""
    hints = get_type_hints(cls)
    fields = {field.name: _strategy(hints[field.name]) for field in dataclasses.fields(cls)}
    if "event_id" in fields:
        fields["event_id"] = st.uuids().map(str)
    return st.builds(cls, **fields)


EVENTS: st.SearchStrategy[Event] = st.one_of(*(builds(cls) for cls in EVENT_TYPES.values()))


def test_golden_bytes() -> None:
    data = wire.encode(SUBMITTED)
    assert data[:10].hex() == MARKER_AND_FINGERPRINT
    assert data[10:].hex() == BODY_HEX
    assert wire.decode(data) == SUBMITTED


def _rabin(data: bytes) -> bytes:
    """CRC-64-AVRO as the Avro specification writes it, stored little-endian."""
    empty = 0xC15D213AA4D7A795
    table = []
    for index in range(256):
        value = index
        for _ in range(8):
            value = (value >> 1) ^ (empty & -(value & 1))
        table.append(value)
    fingerprint = empty
    for byte in data:
        fingerprint = (fingerprint >> 8) ^ table[(fingerprint ^ byte) & 0xFF]
    return fingerprint.to_bytes(8, "little")


def _simple_primitives(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_simple_primitives(item) for item in schema]
    if isinstance(schema, dict):
        if list(schema) == ["type"] and isinstance(schema["type"], str):
            return schema["type"]
        return {key: _simple_primitives(value) for key, value in schema.items()}
    return schema


@pytest.mark.parametrize("name", sorted(EVENT_TYPES))
def test_fingerprint_follows_the_avro_specification(name: str) -> None:
    schema = avro.schema.parse((SCHEMA_DIR / f"{name}.avsc").read_text(encoding="utf-8"))
    # Apache's Python library leaves {"type":"string"} where a logicalType was dropped; the
    # specification's [PRIMITIVES] rule writes the simple form "string".
    canonical = json.dumps(
        _simple_primitives(json.loads(schema.canonical_form)), separators=(",", ":")
    )
    assert "logicalType" not in canonical
    assert "doc" not in canonical
    assert wire.default_codec().fingerprint(name) == _rabin(canonical.encode())
    assert _rabin(b'"int"') == avro.schema.parse('"int"').fingerprint("CRC-64-AVRO")


@settings(max_examples=300)
@given(EVENTS)
def test_every_event_round_trips(event: Event) -> None:
    assert wire.decode(wire.encode(event)) == event


@settings(max_examples=200)
@given(EVENTS)
def test_apache_avro_reads_what_samt124_writes(event: Event) -> None:
    data = wire.encode(event)
    name = type(event).__name__
    schema = avro.schema.parse((SCHEMA_DIR / f"{name}.avsc").read_text(encoding="utf-8"))
    record = avro.io.DatumReader(schema).read(avro.io.BinaryDecoder(io.BytesIO(data[10:])))
    for field, value in dataclasses.asdict(event).items():
        assert _plain(record[field]) == _plain(value), field


@settings(max_examples=300)
@given(EVENTS)
def test_optional_fields_named_for_fastavro_write_the_same_bytes(event: Event) -> None:
    """The codec tells fastavro the branch of optional strings and timestamps; the bytes are
    those fastavro writes when it finds the branch itself."""
    schema, fingerprint = wire.default_codec()._current[type(event).__name__]
    out = io.BytesIO()
    schemaless_writer(out, schema, to_record(event))
    assert wire.encode(event) == wire.MARKER + fingerprint + out.getvalue()


def _plain(value: Any) -> Any:
    """Apache Avro returns UUIDs as strings and timestamps in its own UTC zone object."""
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return value


def test_headers_and_key() -> None:
    fingerprint = wire.encode(SUBMITTED)[2:10].hex().encode()
    assert wire.headers(SUBMITTED) == [
        ("event-type", b"RequestSubmitted"),
        ("schema-fingerprint", fingerprint),
    ]
    assert wire.key(SUBMITTED) == b"124-IR-30-000001"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "truncated header"),
        (b"\xc3\x01\x00", "truncated header"),
        (b"\x00\x01" + bytes(8) + b"\x00", "bad marker"),
        (b"\xc3\x01" + bytes(8) + b"\x00", "unknown schema fingerprint"),
    ],
)
def test_decode_errors_say_why(data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as caught:
        wire.decode(data)
    assert caught.value.reason.startswith(reason)


def test_truncated_body_and_trailing_bytes_are_rejected() -> None:
    data = wire.encode(SUBMITTED)
    with pytest.raises(DecodeError, match="undecodable RequestSubmitted body"):
        wire.decode(data[:-3])
    with pytest.raises(DecodeError, match="1 trailing bytes"):
        wire.decode(data + b"\x00")


@settings(max_examples=500)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError):
        wire.decode(data)


@settings(max_examples=500)
@given(EVENTS, st.data())
def test_damaged_messages_raise_only_decode_error(event: Event, data: st.DataObject) -> None:
    message = bytearray(wire.encode(event))
    cut = data.draw(st.integers(0, len(message) - 1))
    body = data.draw(st.binary(max_size=64))
    for damaged in (bytes(message[:cut]), bytes(message[:10]) + body):
        with contextlib.suppress(DecodeError):
            wire.decode(damaged)


def test_old_messages_read_with_an_evolved_current_schema(tmp_path: Path) -> None:
    current = tmp_path / "current"
    shutil.copytree(SCHEMA_DIR, current, ignore=shutil.ignore_patterns("released", "*.py"))
    path = current / "RequestClosed.avsc"
    schema = json.loads(path.read_text(encoding="utf-8"))
    schema["fields"].append(
        {"name": "comment", "type": ["null", "string"], "default": None, "doc": "Free text."}
    )
    path.write_text(json.dumps(schema), encoding="utf-8")
    closed = RequestClosed(
        event_id="0b5a3c1e-2d4f-4a6b-8c9d-0e1f2a3b4c5d",
        request_id="124-1",
        occurred_at=datetime(2025, 11, 1, tzinfo=UTC),
        recorded_at=datetime(2025, 11, 1, tzinfo=UTC),
        source="desk-124",
        satisfaction=4,
    )
    version_1 = wire.encode(closed)
    evolved = Codec(current, RELEASED_DIR)
    assert evolved.fingerprint("RequestClosed") != version_1[2:10]
    assert evolved.decode(version_1) == closed
    assert evolved.decode(evolved.encode(closed)) == closed
    with pytest.raises(DecodeError, match="unknown schema fingerprint"):
        wire.decode(evolved.encode(closed))  # version 1 readers do not know the new schema yet
