"""Typed data files: problems name the file, the path inside it and what is wrong."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from samt124 import cli
from samt124.domain.calendar import DEFAULT_CALENDARS
from samt124.domain.data_files import DataFileError, kind_of, location
from samt124.domain.official_holidays import DEFAULT_HOLIDAYS
from samt124.domain.routing import DEFAULT_RULES, load_rules
from samt124.domain.sla import DEFAULT_POLICIES

SHIPPED = {
    "rules": DEFAULT_RULES,
    "policies": DEFAULT_POLICIES,
    "calendars": DEFAULT_CALENDARS,
    "holidays": DEFAULT_HOLIDAYS,
}


def raw(kind: str) -> Any:
    return json.loads(SHIPPED[kind].read_text(encoding="utf-8"))


def check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    status = cli.main(["rules", "check", *args])
    out, err = capsys.readouterr()
    return status, out.splitlines(), err


def write(tmp_path: Path, name: str, document: Any) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


@pytest.mark.parametrize("kind", sorted(SHIPPED))
def test_every_shipped_file_checks_clean_and_its_kind_is_told_from_its_keys(
    kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert kind_of(raw(kind)) == kind
    status, out, _ = check(capsys, str(SHIPPED[kind]))
    assert status == 0
    (line,) = out
    assert line.startswith(f"{SHIPPED[kind]}: ")
    assert line.endswith(": OK")


def test_a_wrong_rules_file_lists_each_problem_by_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = raw("rules")
    document["versions"][1]["rules"][2]["body_kind"] = "KHANEH"
    document["versions"][1]["rules"][2]["categries"] = ["IND-PERMIT"]
    document["versions"][0]["effective_from"] = "2020-03-20T00:00:00"
    path = write(tmp_path, "rules.json", document)
    status, out, _ = check(capsys, str(path))
    assert status == 1
    assert any(
        line.startswith(f"{path}: versions[1].rules[2].body_kind: Input should be ") for line in out
    )
    assert f"{path}: versions[1].rules[2].categries: Extra inputs are not permitted" in out
    assert any(line.startswith(f"{path}: versions[0].effective_from: ") for line in out)
    assert out[-1] == f"{path}: 3 problem(s)"


def test_the_last_rule_must_match_everything(tmp_path: Path) -> None:
    document = raw("rules")
    document["versions"][0]["rules"].pop()
    path = write(tmp_path, "rules.json", document)
    with pytest.raises(DataFileError) as caught:
        load_rules(path)
    assert caught.value.lines() == [
        f"{path}: versions[0]: rules version 1399.1: the last rule must match everything"
    ]


def test_a_policies_file_must_give_every_request_a_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = raw("policies")
    version = document["versions"][0]
    version["policies"] = [p for p in version["policies"] if p["id"] != "low"]
    version["policies"][0]["hours"]["RESOLUTION"] = -1
    path = write(tmp_path, "policies.json", document)
    status, out, _ = check(capsys, str(path), "--kind", "policies")
    assert status == 1
    assert (
        f"{path}: versions[0].policies[0].hours.RESOLUTION: Input should be greater than 0" in out
    )


def test_a_calendars_file_with_overlapping_hours_or_a_missing_holidays_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = raw("calendars")
    document["schedules"]["*"][1]["week"]["SAT"] = ["06:00-13:00", "12:00-14:00"]
    path = write(tmp_path, "calendars.json", document)
    status, out, _ = check(capsys, str(path))
    assert status == 1
    assert any(
        line.startswith(f"{path}: schedules.*[1].week: ") and "overlap" in line for line in out
    )
    unknown = copy.deepcopy(raw("calendars"))
    unknown["schedules"]["IR-99"] = unknown["schedules"]["*"]
    path = write(tmp_path, "calendars.json", unknown)
    status, out, _ = check(capsys, str(path))
    assert status == 1
    assert out[0].startswith(f"{path}: schedules: unknown province codes ['IR-99']")

    fixed = copy.deepcopy(raw("calendars"))
    fixed["official_holidays"] = "no-such-holidays.json"
    path = write(tmp_path, "calendars.json", fixed)
    status, out, _ = check(capsys, str(path))
    assert status == 1
    assert out[0].startswith(f"{path}: cannot read ")
    assert "no-such-holidays.json" in out[0]


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = check(capsys, str(tmp_path / "missing.json"))
    assert status == 2
    assert "cannot read" in err
    path = write(tmp_path, "other.json", {"anything": 1})
    status, _, err = check(capsys, str(path))
    assert status == 2
    assert "give --kind" in err
    status, _, err = check(capsys, str(path), "--kind", "menu")
    assert status == 2
    assert "argument --kind: invalid choice: 'menu'" in err


def test_a_file_that_is_not_json_is_a_problem_of_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rules.json"
    path.write_text('{"versions": [', encoding="utf-8")
    status, out, _ = check(capsys, str(path), "--kind", "rules")
    assert status == 1
    assert out[0].startswith(f"{path}: line 1 column ")


def test_locations_read_like_the_document() -> None:
    assert location(("versions", 1, "rules", 0, "id")) == "versions[1].rules[0].id"
    assert location(("schedules", "*", 0, "week")) == "schedules.*[0].week"
    assert location(()) == ""
