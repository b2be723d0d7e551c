"""Compatibility of the current Avro schemas with every released version.

For each record and each released version, both directions must hold:

- BACKWARD: a reader with the current schema reads data written with the released one;
- FORWARD: a reader with the released schema reads data written with the current one.

Each direction is checked twice: by the Avro specification's schema resolution rules, and by
trial, writing samples with the writer schema and reading them with the reader schema in fastavro.
"""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.schema import expand_schema

PROMOTIONS = frozenset(
    {
        ("int", "long"),
        ("int", "float"),
        ("int", "double"),
        ("long", "float"),
        ("long", "double"),
        ("float", "double"),
        ("string", "bytes"),
        ("bytes", "string"),
    }
)  # (writer, reader) pairs the specification resolves


def check(schema_dir: Path, released_dir: Path) -> list[str]:
    """Every compatibility problem between the current schemas and the released versions."""
    current = _load(schema_dir)
    problems = []
    for version in _versions(released_dir):
        for name, old in _load(version).items():
            new = current.get(name)
            if new is None:
                problems.append(f"{name}: released in version {version.name}, no current schema")
                continue
            label = f"{name} (released {version.name} vs current)"
            for direction, reader, writer in (("BACKWARD", new, old), ("FORWARD", old, new)):
                found = incompatibilities(expand_schema(reader), expand_schema(writer), name)
                found += _trial(reader, writer)
                problems.extend(f"{label} {direction}: {problem}" for problem in found)
    return problems


def unreleased(schema_dir: Path, released_dir: Path) -> list[str]:
    """Records that have a current schema but no released version yet."""
    released = {name for version in _versions(released_dir) for name in _load(version)}
    return sorted(set(_load(schema_dir)) - released)


def incompatibilities(reader: Any, writer: Any, path: str) -> list[str]:
    """Why ``reader`` cannot read data written with ``writer`` (expanded schemas); [] if it can."""
    if isinstance(writer, list):  # every branch the writer may have used must be readable
        return [
            problem
            for branch in writer
            for problem in incompatibilities(reader, branch, f"{path}<{_kind(branch)}>")
        ]
    if isinstance(reader, list):
        if any(not incompatibilities(branch, writer, path) for branch in reader):
            return []
        branches = ", ".join(_kind(branch) for branch in reader)
        return [f"{path}: no branch of the reader union [{branches}] reads {_kind(writer)}"]
    reader_kind, writer_kind = _kind(reader), _kind(writer)
    if reader_kind != writer_kind:
        if (writer_kind, reader_kind) in PROMOTIONS:
            return []
        return [f"{path}: type changed from {writer_kind} to {reader_kind}"]
    problems = []
    if _logical(reader) != _logical(writer):
        problems.append(
            f"{path}: logical type changed from {_logical(writer)} to {_logical(reader)}"
        )
    if reader_kind in {"record", "enum", "fixed"} and not _same_name(reader, writer):
        problems.append(f"{path}: named type {writer['name']} is read as {reader['name']}")
    if reader_kind == "record":
        problems += _record_problems(reader, writer, path)
    elif reader_kind == "enum":
        missing = [symbol for symbol in writer["symbols"] if symbol not in reader["symbols"]]
        if missing and "default" not in reader:
            problems.append(f"{path}: enum symbols {', '.join(missing)} unknown to the reader")
    elif reader_kind == "array":
        problems += incompatibilities(reader["items"], writer["items"], f"{path}[]")
    elif reader_kind == "map":
        problems += incompatibilities(reader["values"], writer["values"], f"{path}{{}}")
    elif reader_kind == "fixed" and reader["size"] != writer["size"]:
        problems.append(f"{path}: fixed size changed from {writer['size']} to {reader['size']}")
    return problems


def _record_problems(reader: Any, writer: Any, path: str) -> list[str]:
    written = {field["name"]: field for field in writer["fields"]}
    problems = []
    for field in reader["fields"]:
        names = [field["name"], *field.get("aliases", [])]
        source = next((written[name] for name in names if name in written), None)
        where = f"{path}.{field['name']}"
        if source is not None:
            problems += incompatibilities(field["type"], source["type"], where)
        elif "default" not in field:
            problems.append(f"{where}: not in the written data and has no default")
    return problems


def _kind(schema: Any) -> str:
    if isinstance(schema, list):
        return "union"
    if isinstance(schema, dict):
        return str(schema["type"])
    return str(schema)


def _logical(schema: Any) -> str | None:
    return schema.get("logicalType") if isinstance(schema, dict) else None


def _same_name(reader: Any, writer: Any) -> bool:
    def short(name: str) -> str:
        return name.rsplit(".", 1)[-1]

    aliases = {short(alias) for alias in reader.get("aliases", [])}
    return short(writer["name"]) in {short(reader["name"]), *aliases}


def _trial(reader: Any, writer: Any) -> list[str]:
    """Write samples covering every enum symbol and union branch; read them back."""
    written, read = parse_schema(writer), parse_schema(reader)
    expanded = expand_schema(writer)
    problems = []
    for index in range(_variety(expanded)):
        out = io.BytesIO()
        schemaless_writer(out, written, _sample(expanded, index))
        out.seek(0)
        try:
            schemaless_reader(out, written, read)
        except Exception as exc:
            problems.append(f"trial: sample {index} does not read: {type(exc).__name__}: {exc}")
    return problems


def _variety(schema: Any) -> int:
    """Samples needed so that every enum symbol and union branch occurs at least once."""
    if isinstance(schema, list):
        return max(len(schema), *(_variety(branch) for branch in schema))
    if not isinstance(schema, dict):
        return 1
    kind = schema["type"]
    if kind == "record":
        return max([1, *(_variety(field["type"]) for field in schema["fields"])])
    if kind == "enum":
        return len(schema["symbols"])
    if kind in {"array", "map"}:
        return _variety(schema["items" if kind == "array" else "values"])
    return 1


def _sample(schema: Any, index: int) -> Any:
    if isinstance(schema, list):
        return _sample(schema[index % len(schema)], index)
    kind = _kind(schema)
    if kind == "record":
        return {field["name"]: _sample(field["type"], index) for field in schema["fields"]}
    if kind == "enum":
        return schema["symbols"][index % len(schema["symbols"])]
    if kind == "array":
        return [_sample(schema["items"], index)]
    if kind == "map":
        return {"key": _sample(schema["values"], index)}
    if kind == "fixed":
        return bytes(schema["size"])
    if _logical(schema) == "uuid":
        return str(uuid.UUID(int=index))
    return {
        "null": None,
        "boolean": index % 2 == 0,
        "int": index,
        "long": index,
        "float": index + 0.5,
        "double": index + 0.5,
        "bytes": b"sample",
        "string": f"sample {index}",
    }[kind]


def _load(directory: Path) -> dict[str, Any]:
    """Raw schemas of a directory, by record name."""
    schemas = {}
    for path in sorted(directory.glob("*.avsc")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        schemas[schema["name"]] = schema
    return schemas


def _versions(released_dir: Path) -> list[Path]:
    if not released_dir.is_dir():
        return []
    versions = [path for path in released_dir.iterdir() if path.is_dir()]
    return sorted(versions, key=lambda path: (len(path.name), path.name))


__all__ = ["check", "incompatibilities", "unreleased"]
