"""Event -> ClickHouse row mapping: PII never in clear, Jalali columns, where an event belongs."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, date, datetime

from consumers.sink.rows import (
    ERROR_COLUMNS,
    EVENT_COLUMNS,
    SLA_COLUMNS,
    Position,
    error_row,
    event_row,
    payload,
    requester_hash,
    sla_row,
)
from samt124.domain.events import (
    RequestAssigned,
    Requester,
    RequestSubmitted,
    RequestTransferred,
    SlaBreached,
)
from samt124.domain.tehran_time import jalali

T0 = datetime(2024, 10, 21, 20, 45, 1, 500_000, tzinfo=UTC)  # 1403-08-01 00:15 in Tehran
AT = Position("ns.province.IR-30", 2, 41)
NOW = datetime(2024, 10, 22, tzinfo=UTC)
KEY = b"secret"


def submitted() -> RequestSubmitted:
    return RequestSubmitted(
        event_id="0f3d8a4e-8f8e-4a53-9a6e-6d1b2f0e5a11",
        request_id="r-1",
        occurred_at=T0,
        recorded_at=T0,
        source="call-centre-124",
        channel="PHONE_124",
        requester=Requester(
            national_id="10101234567", name="شرکت پارس", phone="09120000000", email="a@b.ir"
        ),
        category="IND-RAW",
        province="IR-30",
        subject="کمبود مواد اولیه",
        body="تماس با آقای احمدی ۰۹۱۲۰۰۰۰۰۰۰",
        priority="HIGH",
    )


def test_event_row_hashes_the_national_id_and_drops_every_other_personal_field() -> None:
    row = dict(zip(EVENT_COLUMNS, event_row(submitted(), AT, "IR-30", NOW, KEY), strict=True))
    expected = hmac.new(KEY, b"10101234567", hashlib.sha256).hexdigest()
    assert row["requester_hash"] == expected
    text = repr(row)
    for secret in ("10101234567", "شرکت پارس", "09120000000", "a@b.ir", "احمدی", "کمبود"):
        assert secret not in text
    assert json.loads(row["payload"])["category"] == "IND-RAW"


def test_without_a_key_no_hash_is_stored() -> None:
    assert requester_hash("10101234567", b"") == ""
    row = dict(zip(EVENT_COLUMNS, event_row(submitted(), AT, "IR-30", NOW, b""), strict=True))
    assert row["requester_hash"] == ""


def test_event_row_carries_intake_fields_time_and_coordinates() -> None:
    row = dict(zip(EVENT_COLUMNS, event_row(submitted(), AT, "IR-30", NOW, KEY), strict=True))
    assert (row["event_type"], row["province"], row["category"]) == (
        "RequestSubmitted",
        "IR-30",
        "IND-RAW",
    )
    assert (row["channel"], row["priority"]) == ("PHONE_124", "HIGH")
    assert row["occurred_ms"] == int(T0.timestamp() * 1000)
    assert (row["topic"], row["partition"], row["offset"]) == ("ns.province.IR-30", 2, 41)
    assert (row["jalali_year"], row["jalali_month"]) == (1403, 8)


def test_jalali_day_is_taken_in_tehran_and_weeks_start_on_saturday() -> None:
    day = jalali(T0)  # 21 October (Mehr 30) in UTC, already Aban 1 in Tehran
    assert (day.month, day.day) == (8, 1)
    nowruz = datetime(2024, 3, 20, 12, tzinfo=UTC)  # 1403-01-01, a Wednesday
    assert (jalali(nowruz).year, jalali(nowruz).month, jalali(nowruz).week) == (1403, 1, 1)
    friday = datetime(2024, 3, 22, 12, tzinfo=UTC)  # 1403-01-03
    saturday = datetime(2024, 3, 23, 12, tzinfo=UTC)  # 1403-01-04 starts week 2
    assert (jalali(friday).week, jalali(saturday).week) == (1, 2)


def test_events_without_a_province_take_the_topic_province() -> None:
    assigned = RequestAssigned(
        event_id="e-2",
        request_id="r-1",
        occurred_at=T0,
        recorded_at=T0,
        source="desk-124",
        body_id="samt-org:IR-30",
        assignee="operator-7",
    )
    row = dict(zip(EVENT_COLUMNS, event_row(assigned, AT, "IR-30", NOW, KEY), strict=True))
    assert (row["province"], row["body_id"], row["category"]) == ("IR-30", "samt-org:IR-30", "")
    assert "operator-7" not in row["payload"]


def test_a_transfer_belongs_where_the_request_goes() -> None:
    transferred = RequestTransferred(
        event_id="e-3",
        request_id="r-1",
        occurred_at=T0,
        recorded_at=T0,
        source="desk-124",
        to_province="IR-08",
        to_body_id="ministry:agriculture",
        to_body_kind="OTHER_MINISTRY",
        reason="خارج از حوزه",
    )
    row = dict(zip(EVENT_COLUMNS, event_row(transferred, AT, "IR-30", NOW, KEY), strict=True))
    assert (row["province"], row["body_id"], row["body_kind"]) == (
        "IR-08",
        "ministry:agriculture",
        "OTHER_MINISTRY",
    )


def test_sla_row() -> None:
    breached = SlaBreached(
        event_id="e-4",
        request_id="r-1",
        occurred_at=T0,
        recorded_at=T0,
        source="samt124-sla",
        clock="RESOLUTION",
        cycle=1,
        due_at=T0,
        body_id="samt-org:IR-30",
        province="IR-30",
        policy_id="default",
        policy_version="1",
    )
    row = dict(zip(SLA_COLUMNS, sla_row(breached, NOW), strict=True))
    assert (row["event_type"], row["clock"], row["due_at"], row["province"]) == (
        "SlaBreached",
        "RESOLUTION",
        T0,
        "IR-30",
    )


def test_payload_is_plain_json_with_iso_times() -> None:
    data = json.loads(payload(submitted()))
    assert data["occurred_at"] == T0.isoformat()
    assert "requester" not in data
    assert "subject" not in data


def test_error_row_keeps_the_raw_bytes() -> None:
    row = dict(zip(ERROR_COLUMNS, error_row(AT, "bad marker", b"\x00\xff", NOW), strict=True))
    assert (row["raw_hex"], row["offset"], row["reason"]) == ("00ff", 41, "bad marker")
    assert date(2024, 10, 22) == row["ingested_at"].date()
