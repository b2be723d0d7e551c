"""Validation at the boundary: field-level, readable errors."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from samt124.domain.events import (
    Envelope,
    OfficeClosureAnnounced,
    RequestClosed,
    Requester,
    RequestSubmitted,
    replace,
)
from samt124.domain.validation import FieldError, ValidationFailed, validate

ENVELOPE = [field.name for field in dataclasses.fields(Envelope)]
NOW = datetime(2025, 10, 22, 8, 0, tzinfo=UTC)
VALID = RequestSubmitted(
    event_id="6f1c2d3e-4b5a-4c6d-8e7f-901a2b3c4d5e",
    request_id="124-1",
    occurred_at=NOW - timedelta(minutes=1),
    recorded_at=NOW,
    source="portal-124",
    channel="WEB_PORTAL",
    requester=Requester(national_id="0012345678", name="علی احمدی", email="ali@example.ir"),
    category="MKT-HOARDING",
    province="IR-30",
    subject="احتکار روغن",
    body="انبار روغن در کرج",
    priority="URGENT",
)


def test_a_valid_event_has_no_errors() -> None:
    assert validate(VALID, now=NOW) == []


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"province": "IR-31"}, "province", "unknown province 'IR-31'"),
        ({"category": "XYZ"}, "category", "unknown category 'XYZ'"),
        ({"event_id": "not-a-uuid"}, "event_id", "must be a UUID"),
        ({"subject": " "}, "subject", "must not be empty"),
        ({"subject": "x" * 301}, "subject", "must be at most 300 characters, got 301"),
        ({"body": "x" * 20_001}, "body", "must be at most 20000 characters"),
        ({"attachment_count": 101}, "attachment_count", "must be between 0 and 100, got 101"),
        ({"channel": "FAX"}, "channel", "must be one of PHONE_124, WEB_PORTAL"),
        ({"occurred_at": datetime(2025, 10, 22, 8, 0)}, "occurred_at", "timezone-aware"),
        ({"occurred_at": NOW + timedelta(minutes=6)}, "occurred_at", "must not be after"),
        ({"recorded_at": datetime(1999, 12, 31, tzinfo=UTC)}, "recorded_at", "before 2000"),
        ({"attachment_count": "2"}, "attachment_count", "must be int, got str"),
    ],
)
def test_each_rule_names_its_field(changes: dict[str, object], field: str, message: str) -> None:
    (error,) = validate(replace(VALID, **changes), now=NOW)
    assert error.field == field
    assert message in error.message


@pytest.mark.parametrize(
    "event_id",
    [
        "6F1C2D3E-4B5A-4C6D-8E7F-901A2B3C4D5E",
        "{6f1c2d3e-4b5a-4c6d-8e7f-901a2b3c4d5e}",
        "urn:uuid:6f1c2d3e-4b5a-4c6d-8e7f-901a2b3c4d5e",
        "6f1c2d3e4b5a4c6d8e7f901a2b3c4d5e",
    ],
)
def test_a_uuid_in_any_form_python_reads_is_valid(event_id: str) -> None:
    assert validate(replace(VALID, event_id=event_id), now=NOW) == []


@pytest.mark.parametrize(
    "event_id", ["6f1c2d3e-4b5a-4c6d-8e7f-901a2b3c4d5", "6f1c2d3e-4b5a-4c6d-8e7f-901a2b3c4d5g"]
)
def test_a_uuid_a_digit_short_or_with_a_letter_past_f_is_not(event_id: str) -> None:
    (error,) = validate(replace(VALID, event_id=event_id), now=NOW)
    assert error.field == "event_id"
    assert "must be a UUID" in error.message


def test_future_tolerance_is_five_minutes_in_any_zone() -> None:
    tehran = timezone(timedelta(hours=3, minutes=30))
    soon = (NOW + timedelta(minutes=4)).astimezone(tehran)
    assert validate(replace(VALID, occurred_at=soon, recorded_at=soon), now=NOW) == []


@pytest.mark.parametrize(
    ("requester", "field"),
    [
        (Requester(national_id="12345", name="x"), "requester.national_id"),
        (Requester(national_id="12345678901", name=""), "requester.name"),
        (Requester(national_id="12345678901", name="x", phone="0912-abc"), "requester.phone"),
        (Requester(national_id="12345678901", name="x", email="no-at"), "requester.email"),
    ],
)
def test_requester_fields_are_checked(requester: Requester, field: str) -> None:
    assert [e.field for e in validate(replace(VALID, requester=requester), now=NOW)] == [field]


def test_closures_and_satisfaction() -> None:
    closure = OfficeClosureAnnounced(
        event_id="0b5a3c1e-2d4f-4a6b-8c9d-0e1f2a3b4c5d",
        request_id="closure:IR-30:2025-10-23",
        occurred_at=NOW,
        recorded_at=NOW,
        source="governorate-announcements",
        province="IR-30",
        first_day=date(2025, 10, 24),
        last_day=date(2025, 10, 23),
        reason="آلودگی هوا",
    )
    assert validate(closure, now=NOW) == [FieldError("last_day", "must not be before first_day")]
    assert validate(replace(closure, last_day=date(2025, 10, 25)), now=NOW) == []
    closed = RequestClosed(**{k: getattr(closure, k) for k in ENVELOPE}, satisfaction=6)
    assert validate(closed, now=NOW) == [
        FieldError("satisfaction", "must be between 1 and 5, got 6")
    ]
    assert validate(replace(closed, satisfaction=None), now=NOW) == []


def test_validation_failed_lists_every_error_readably() -> None:
    errors = validate(replace(VALID, province="Alborz", subject=""), now=NOW)
    failure = ValidationFailed(errors)
    assert failure.errors == errors
    assert str(failure) == (
        "invalid event: province: unknown province 'Alborz', expected an ISO 3166-2:IR code "
        "IR-00..IR-30; subject: must not be empty"
    )


def test_an_unknown_category_gets_the_closest_code() -> None:
    from samt124.domain import codes
    from samt124.domain.catalogue import CATALOGUE

    assert codes.unknown("category", "MKT-OVERCHARG", CATALOGUE) == (
        "unknown category 'MKT-OVERCHARG' (did you mean MKT-OVERCHARGE?)"
    )
    assert codes.unknown("category", "???", CATALOGUE).startswith("unknown category '???' (known:")
