"""Reading events from JSON Lines and CSV files: every line an event or field-level errors."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

from producers.files import parse_csv, read, to_json_line
from samt124.domain.events import LetterRegistered, RequestSubmitted
from tests.samples import submitted_line

NOW = datetime(2025, 7, 1, 12, 0, tzinfo=UTC)
SUBMITTED = submitted_line("req-1")


def write(tmp_path: Path, name: str, lines: list[str]) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_valid_line_becomes_an_event_with_a_stable_derived_id(tmp_path: Path) -> None:
    path = write(tmp_path, "events.jsonl", [json.dumps(SUBMITTED, ensure_ascii=False)])
    first = read(path, now=NOW)
    again = read(path, now=NOW)
    assert [line.ok for line in first] == [True]
    event = first[0].event
    assert isinstance(event, RequestSubmitted)
    assert event.occurred_at == datetime(2025, 6, 30, 6, 45, tzinfo=UTC)
    assert event.requester.name == "شرکت نمونه"
    assert again[0].event is not None
    assert event.event_id == again[0].event.event_id


def test_bad_lines_are_named_by_number_and_field(tmp_path: Path) -> None:
    bad_province = {**SUBMITTED, "province": "IR-99"}
    naive_time = {**SUBMITTED, "occurred_at": "2025-06-30T10:15:00"}
    path = write(
        tmp_path,
        "events.jsonl",
        [
            json.dumps(SUBMITTED),
            "{not json",
            json.dumps(bad_province),
            "",
            json.dumps(naive_time),
            json.dumps({"type": "RequestExploded"}),
        ],
    )
    lines = read(path, now=NOW)
    problems = {line.number: [str(e) for e in line.errors] for line in lines if not line.ok}
    assert set(problems) == {2, 3, 5, 6}
    assert problems[2][0].startswith("(line): not JSON")
    assert any(p.startswith("province:") for p in problems[3])
    assert any(p.startswith("occurred_at:") and "offset" in p for p in problems[5])
    assert problems[6][0].startswith("type: unknown event type 'RequestExploded'")


def test_a_missing_required_field_is_reported_not_raised(tmp_path: Path) -> None:
    partial = {k: v for k, v in SUBMITTED.items() if k != "category"}
    lines = read(write(tmp_path, "e.jsonl", [json.dumps(partial)]), now=NOW)
    assert [str(e) for e in lines[0].errors] == ["category: required"]


def test_secretariat_csv_accepts_jalali_dates() -> None:
    text = (
        "registry_number,sender_organization,letter_date,category,province,subject,body\n"
        "1404/12345,اداره کل صمت البرز,1404/03/20,COR-SECRETARIAT,IR-30,موضوع نامه,متن نامه\n"
    )
    (line,) = list(parse_csv(text, now=NOW))
    assert line.errors == ()
    letter = line.event
    assert isinstance(letter, LetterRegistered)
    assert letter.letter_date == date(2025, 6, 10)
    assert letter.request_id == "letter:IR-30:1404/12345"


def test_csv_without_required_columns_is_one_clear_error() -> None:
    (line,) = list(parse_csv("registry_number,subject\n1,x\n", now=NOW))
    assert line.event is None
    assert "missing columns" in str(line.errors[0])


def test_json_lines_round_trip(tmp_path: Path) -> None:
    (line,) = read(write(tmp_path, "a.jsonl", [json.dumps(SUBMITTED)]), now=NOW)
    assert line.event is not None
    again = read(write(tmp_path, "b.jsonl", [to_json_line(line.event)]), now=NOW)
    assert again[0].event == line.event
