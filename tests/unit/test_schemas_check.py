"""Schema evolution: breaking changes are caught, compatible ones pass."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from samt124.contract.compatibility import check, unreleased
from schemas import RELEASED_DIR, SCHEMA_DIR


def _evolve(tmp_path: Path, name: str, change: Callable[[dict[str, Any]], None]) -> Path:
    current = tmp_path / "current"
    shutil.copytree(SCHEMA_DIR, current, ignore=shutil.ignore_patterns("released", "*.py", "__*"))
    path = current / f"{name}.avsc"
    schema = json.loads(path.read_text(encoding="utf-8"))
    change(schema)
    path.write_text(json.dumps(schema), encoding="utf-8")
    return current


def _field(schema: dict[str, Any], name: str) -> dict[str, Any]:
    fields: list[dict[str, Any]] = schema["fields"]
    (field,) = (field for field in fields if field["name"] == name)
    return field


def test_the_shipped_schemas_are_compatible_and_released() -> None:
    assert check(SCHEMA_DIR, RELEASED_DIR) == []
    assert unreleased(SCHEMA_DIR, RELEASED_DIR) == ["SlaDeadlinesSet"]  # since release 1


def test_a_field_added_with_a_default_is_compatible(tmp_path: Path) -> None:
    def add(schema: dict[str, Any]) -> None:
        schema["fields"].append(
            {"name": "comment", "type": ["null", "string"], "default": None, "doc": "Text."}
        )

    assert check(_evolve(tmp_path, "RequestClosed", add), RELEASED_DIR) == []


def test_a_field_added_without_a_default_breaks_backward(tmp_path: Path) -> None:
    def add(schema: dict[str, Any]) -> None:
        schema["fields"].append({"name": "comment", "type": "string", "doc": "Text."})

    problems = check(_evolve(tmp_path, "RequestClosed", add), RELEASED_DIR)
    assert any(
        p.startswith("RequestClosed (released 1 vs current) BACKWARD: RequestClosed.comment: not")
        for p in problems
    )
    assert any("BACKWARD: trial" in p for p in problems)
    assert not any("FORWARD" in p for p in problems)


def test_a_removed_enum_symbol_breaks_backward_and_a_removed_field_forward(
    tmp_path: Path,
) -> None:
    def change(schema: dict[str, Any]) -> None:
        _field(schema, "outcome")["type"]["symbols"].remove("DUPLICATE")
        schema["fields"].remove(_field(schema, "resolution_note"))

    problems = check(_evolve(tmp_path, "RequestResolved", change), RELEASED_DIR)
    backward = [p for p in problems if " BACKWARD: " in p]
    forward = [p for p in problems if " FORWARD: " in p]
    assert any("RequestResolved.outcome: enum symbols DUPLICATE unknown" in p for p in backward)
    assert any("trial" in p and "DUPLICATE" in p for p in backward)
    assert any("RequestResolved.resolution_note: not in the written data" in p for p in forward)


@pytest.mark.parametrize(
    ("old", "new", "compatible"),
    [
        ("int", "long", True),
        ("long", "int", False),
        ("string", ["null", "string"], True),
        (["null", "string"], "string", False),
    ],
)
def test_type_changes_follow_the_resolution_rules(
    tmp_path: Path, old: Any, new: Any, compatible: bool
) -> None:
    released = tmp_path / "released" / "1"
    released.mkdir(parents=True)
    current = tmp_path / "current"
    current.mkdir()
    for directory, kind in ((released, old), (current, new)):
        schema = {"type": "record", "name": "R", "fields": [{"name": "x", "type": kind}]}
        (directory / "R.avsc").write_text(json.dumps(schema), encoding="utf-8")
    backward = [p for p in check(current, tmp_path / "released") if " BACKWARD: " in p]
    assert (backward == []) is compatible


def test_a_new_record_is_reported_unreleased(tmp_path: Path) -> None:
    def rename(schema: dict[str, Any]) -> None:
        schema["name"] = "RequestArchived"

    current = _evolve(tmp_path, "RequestClosed", rename)
    assert "RequestArchived" in unreleased(current, RELEASED_DIR)
    assert "RequestClosed: released in version 1, no current schema" in check(current, RELEASED_DIR)
