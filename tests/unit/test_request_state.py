"""Stored request state: what a changelog holds must decode the same way in every later release."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from samt124.domain.lifecycle import RequestState
from samt124.domain.sla import Clock

DATA = Path(__file__).parent / "data"

# The state behind ``request_state_format_<n>.json``: format 1 as release 0.1.0 wrote it (clocks as
# positional rows), format 2 as this release writes it (every value named).
STORED = RequestState(
    request_id="5b0c1f7e-3d7a-4c55-9a57-1e6f0b3c2d41",
    province="IR-30",
    category="IND-PERMIT",
    priority="NORMAL",
    channel="PHONE_124",
    submitted_at=datetime(2026, 1, 10, 5, 30, 0, 250_000, tzinfo=UTC),
    status="AWAITING_APPLICANT",
    body_id="khaneh-samt:IR-30",
    body_kind="KHANEH_SAMT",
    policy_version="1404.1",
    clocks=(
        Clock("FIRST_RESPONSE", 1, "normal-delegated", elapsed=3_600_000_000, stopped=True),
        Clock("RESOLUTION", 2, "normal-delegated", elapsed=7_200_000_000),
        Clock("OPERATIONAL", 1, "normal-delegated", running_since=1_768_023_000_250_000),
    ),
    emitted=frozenset({"RESOLUTION|1|50", "RESOLUTION|1|75", "RESOLUTION|1|100"}),
    seen=("e-1", "e-2", "e-3"),
)


def test_a_state_stored_by_release_0_1_0_decodes_to_the_same_state() -> None:
    raw = (DATA / "request_state_format_1.json").read_bytes()
    assert RequestState.from_bytes(raw) == STORED


def test_a_state_is_stored_as_format_2_names_every_value() -> None:
    raw = (DATA / "request_state_format_2.json").read_bytes()
    assert STORED.to_bytes() == raw
    assert RequestState.from_bytes(raw) == STORED


def _reversed(value: Any) -> Any:
    """The same JSON value with the keys of every object in the opposite order."""
    if isinstance(value, dict):
        return {key: _reversed(value[key]) for key in reversed(value)}
    if isinstance(value, list):
        return [_reversed(item) for item in value]
    return value


def test_the_order_of_stored_keys_does_not_matter() -> None:
    stored = json.loads((DATA / "request_state_format_2.json").read_bytes())
    assert RequestState.from_json(_reversed(stored)) == STORED


def test_a_state_survives_its_own_encoding() -> None:
    assert RequestState.from_bytes(STORED.to_bytes()) == STORED


def test_an_unknown_format_is_refused() -> None:
    stored = json.loads((DATA / "request_state_format_2.json").read_bytes())
    with pytest.raises(ValueError, match="unknown request state format 3"):
        RequestState.from_json({**stored, "v": 3})
