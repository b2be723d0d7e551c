"""SLA policies: versions by submission time, first match, thresholds, clock arithmetic."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from samt124.domain.calendar import Calendar, load_config
from samt124.domain.data_files import DataFileError
from samt124.domain.sla import DEFAULT_POLICIES, Clock, load_policies, parse_policies
from samt124.domain.tehran_time import US_PER_HOUR, to_us

TEHRAN = ZoneInfo("Asia/Tehran")
POLICIES = load_policies()
CALENDAR = Calendar(load_config())
RAW: dict[str, Any] = json.loads(DEFAULT_POLICIES.read_text(encoding="utf-8"))


def at(year: int, month: int, day: int, hour: int, minute: int = 0) -> int:
    return to_us(datetime(year, month, day, hour, minute, tzinfo=TEHRAN))


def test_khaneh_samt_works_to_a_tighter_operational_target_inside_the_commitment() -> None:
    version = POLICIES.version_at(datetime(2025, 7, 1, tzinfo=TEHRAN))
    delegated = POLICIES.select(version, "IND-PERMIT", "NORMAL", "KHANEH_SAMT")
    own = POLICIES.select(version, "IND-PERMIT", "NORMAL", "SAMT_ORGANIZATION")
    assert (delegated.id, own.id) == ("normal-delegated", "normal")
    assert delegated.targets["RESOLUTION"] == own.targets["RESOLUTION"] == 60 * US_PER_HOUR
    assert delegated.targets["OPERATIONAL"] == 36 * US_PER_HOUR
    assert delegated.targets["OPERATIONAL"] < own.targets["OPERATIONAL"]


def test_another_ministry_gets_no_operational_target() -> None:
    version = POLICIES.versions[0]
    policy = POLICIES.select(version, "FOOD-SPOILED", "URGENT", "OTHER_MINISTRY")
    assert policy.id == "other-ministry"
    assert "OPERATIONAL" not in policy.targets
    assert version.thresholds(policy.id, "OPERATIONAL") == ()


def test_thresholds_fall_due_in_order_with_the_escalation_ladder() -> None:
    points = POLICIES.versions[0].thresholds("normal", "RESOLUTION")
    assert [(p.fact, p.mark, p.work // US_PER_HOUR) for p in points] == [
        ("SlaWarning", "50", 30),
        ("SlaWarning", "75", 45),
        ("SlaBreached", "100", 60),
        ("RequestEscalated", "PROVINCE", 60),
        ("RequestEscalated", "MINISTRY", 72),
    ]


def test_the_version_in_force_at_submission_applies() -> None:
    raw = copy.deepcopy(RAW)
    newer = copy.deepcopy(raw["versions"][0])
    newer["version"] = "1405.1"
    newer["effective_from"] = "2026-03-21T00:00:00+03:30"
    newer["policies"][-1]["hours"]["RESOLUTION"] = 100
    raw["versions"].append(newer)
    policies = parse_policies(raw, {})
    assert policies.version_at(datetime(2026, 3, 20, 23, 59, tzinfo=TEHRAN)).version == "1404.1"
    assert policies.version_at(datetime(2026, 3, 21, tzinfo=TEHRAN)).version == "1405.1"
    assert policies.get("1404.1").policy("low").targets["RESOLUTION"] == 120 * US_PER_HOUR


def test_a_version_must_cover_every_priority_and_body_kind() -> None:
    raw = copy.deepcopy(RAW)
    raw["versions"][0]["policies"] = [p for p in raw["versions"][0]["policies"] if p["id"] != "low"]
    with pytest.raises(DataFileError, match=r"^SLA policies: versions\[0\]: .*no policy"):
        parse_policies(raw, {})


def test_a_warning_at_100_percent_is_refused() -> None:
    raw = copy.deepcopy(RAW)
    raw["versions"][0]["warning_percents"] = [50, 100]
    with pytest.raises(
        DataFileError, match=r"versions\[0\]\.warning_percents\[1\]: .* less than 100"
    ):
        parse_policies(raw, {})


def test_a_clock_counts_working_time_only_while_it_runs() -> None:
    # Saturday 10 January 2026, offices 08:00-14:00.
    clock = Clock("RESOLUTION", 1, "normal", running_since=at(2026, 1, 10, 9, 0))
    paused = clock.pause(at(2026, 1, 10, 11, 0), CALENDAR, "IR-30")
    assert (paused.elapsed, paused.paused) == (2 * US_PER_HOUR, True)
    assert paused.elapsed_at(at(2026, 1, 11, 12, 0), CALENDAR, "IR-30") == 2 * US_PER_HOUR
    resumed = paused.resume(at(2026, 1, 11, 12, 0))
    assert resumed.elapsed_at(at(2026, 1, 11, 13, 0), CALENDAR, "IR-30") == 3 * US_PER_HOUR
    assert resumed.reach(5 * US_PER_HOUR, CALENDAR, "IR-30") == at(2026, 1, 12, 9, 0)
    stopped = resumed.stop(at(2026, 1, 11, 14, 30), CALENDAR, "IR-30")
    assert (stopped.elapsed, stopped.stopped, stopped.running) == (4 * US_PER_HOUR, True, False)
    assert stopped.resume(at(2026, 1, 12, 8, 0)) == stopped
    assert stopped.reach(5 * US_PER_HOUR, CALENDAR, "IR-30") is None
