"""The .avsc files match the Python event contract and stay documented and evolvable."""

from __future__ import annotations

import dataclasses
import json
import types
from datetime import date, datetime
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import pytest

from samt124.domain.events import EVENT_TYPES, Envelope, Long, Requester
from schemas import RELEASED_DIR, SCHEMA_DIR

NAMESPACE = "ir.samt124.events"
PERSONAL = {"national_id", "name", "phone", "email"}


def _load(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMA_DIR / f"{name}.avsc").read_text(encoding="utf-8"))
    return schema


def _avro_type(hint: Any) -> Any:
    """The Avro type events.py implies for a field's Python type."""
    if get_origin(hint) is Literal:
        return ("enum", get_args(hint))
    if get_origin(hint) in (Union, types.UnionType):
        (inner,) = (arg for arg in get_args(hint) if arg is not type(None))
        return ["null", _avro_type(inner)]
    if dataclasses.is_dataclass(hint):
        return ("record", getattr(hint, "__name__", ""))
    return {
        str: "string",
        int: "int",
        Long: "long",
        bool: "boolean",
        date: ("int", "date"),
        datetime: ("long", "timestamp-millis"),
    }[hint]


def _declared(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_declared(branch) for branch in schema]
    if isinstance(schema, dict):
        if schema["type"] == "enum":
            return ("enum", tuple(schema["symbols"]))
        if schema["type"] == "record":
            return ("record", schema["name"])
        if "logicalType" in schema and schema["logicalType"] != "uuid":
            return (schema["type"], schema["logicalType"])
        return schema["type"]
    return schema


def test_one_schema_per_event_and_nothing_else() -> None:
    assert sorted(path.stem for path in SCHEMA_DIR.glob("*.avsc")) == sorted(EVENT_TYPES)


@pytest.mark.parametrize("name", sorted(EVENT_TYPES))
def test_schema_matches_the_event_class(name: str) -> None:
    schema = _load(name)
    assert schema["namespace"] == NAMESPACE
    cls = EVENT_TYPES[name]
    hints = get_type_hints(cls)
    names = [field.name for field in dataclasses.fields(cls)]
    assert [field["name"] for field in schema["fields"]] == names
    for field in schema["fields"]:
        assert _declared(field["type"]) == _avro_type(hints[field["name"]]), field["name"]


@pytest.mark.parametrize("name", sorted(EVENT_TYPES))
def test_envelope_comes_first_in_the_same_order(name: str) -> None:
    envelope = [field.name for field in dataclasses.fields(Envelope)]
    fields = _load(name)["fields"][: len(envelope)]
    assert fields == _load("RequestClosed")["fields"][: len(envelope)]
    assert [field["name"] for field in fields] == envelope
    assert fields[0]["type"] == {"type": "string", "logicalType": "uuid"}


@pytest.mark.parametrize("name", sorted(EVENT_TYPES))
def test_every_field_is_documented_and_optional_fields_default_to_null(name: str) -> None:
    cls = EVENT_TYPES[name]
    defaults = {
        field.name: field.default
        for field in dataclasses.fields(cls)
        if field.default is not dataclasses.MISSING
    }
    for field in _load(name)["fields"]:
        assert field["doc"].strip(), field["name"]
        if field["name"] in defaults:
            assert field["default"] == defaults[field["name"]], field["name"]
        else:
            assert "default" not in field, field["name"]


def test_personal_data_is_marked() -> None:
    (requester,) = (f for f in _load("RequestSubmitted")["fields"] if f["name"] == "requester")
    record = requester["type"]
    assert [field["name"] for field in record["fields"]] == [
        field.name for field in dataclasses.fields(Requester)
    ]
    marked = {field["name"] for field in record["fields"] if field.get("pii")}
    assert marked == PERSONAL
    for name in EVENT_TYPES:
        assert not any(field.get("pii") for field in _load(name)["fields"]), name


def _without_docs(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_without_docs(item) for item in schema]
    if isinstance(schema, dict):
        return {key: _without_docs(value) for key, value in schema.items() if key != "doc"}
    return schema


# Records added since release 1, published from the next release on.
UNRELEASED = {"SlaDeadlinesSet"}


def test_released_version_1_is_the_current_contract_but_for_its_docs() -> None:
    for name in set(EVENT_TYPES) - UNRELEASED:
        released = json.loads((RELEASED_DIR / "1" / f"{name}.avsc").read_text(encoding="utf-8"))
        assert _without_docs(released) == _without_docs(_load(name))
