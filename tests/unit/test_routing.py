"""Instant referral: the rules in force at submission decide which body answers."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from samt124.domain.events import LetterRegistered, Requester, RequestSubmitted, derived_id
from samt124.domain.routing import load_rules, parse_rules, route

TEHRAN = ZoneInfo("Asia/Tehran")
RULES = load_rules()
AFTER_MOU = datetime(2025, 7, 1, 9, 0, tzinfo=TEHRAN)
BEFORE_MOU = datetime(2025, 5, 31, 9, 0, tzinfo=TEHRAN)
NOW = datetime(2025, 7, 1, 6, 0, 1, tzinfo=UTC)


def submitted(category: str, province: str, at: datetime = AFTER_MOU) -> RequestSubmitted:
    return RequestSubmitted(
        event_id="0b6d2f4e-5a43-4c59-9a59-1f0c3f1b2a01",
        request_id="req-1",
        occurred_at=at,
        recorded_at=at,
        source="portal",
        correlation_id="corr-1",
        channel="WEB_PORTAL",
        requester=Requester(national_id="10100000001", name="Alborz Steel"),
        category=category,
        province=province,
        subject="permit",
        body="...",
        priority="NORMAL",
    )


def test_alborz_delegated_category_goes_to_khaneh_samt_after_the_mou() -> None:
    referral = route(submitted("IND-PERMIT", "IR-30"), RULES, recorded_at=NOW)
    assert (referral.body_id, referral.body_kind) == ("khaneh-samt:IR-30", "KHANEH_SAMT")
    assert (referral.rule_id, referral.rules_version) == ("IR-30/mou-khaneh-samt", "1404.1")
    assert referral.province == "IR-30"


def test_alborz_delegates_a_whole_group() -> None:
    referral = route(submitted("TRD-EXPORT", "IR-30"), RULES, recorded_at=NOW)
    assert referral.body_id == "khaneh-samt:IR-30"


def test_the_same_category_elsewhere_goes_to_the_provincial_samt_organization() -> None:
    referral = route(submitted("IND-PERMIT", "IR-10"), RULES, recorded_at=NOW)
    assert (referral.body_id, referral.body_kind) == ("samt-org:IR-10", "SAMT_ORGANIZATION")
    assert (referral.rule_id, referral.rules_version) == ("province/samt-org", "1404.1")


def test_a_category_alborz_keeps_stays_with_its_samt_organization() -> None:
    referral = route(submitted("MKT-HOARDING", "IR-30"), RULES, recorded_at=NOW)
    assert referral.body_id == "samt-org:IR-30"


def test_requests_submitted_before_the_mou_use_the_rules_then_in_force() -> None:
    referral = route(submitted("IND-PERMIT", "IR-30", BEFORE_MOU), RULES, recorded_at=NOW)
    assert (referral.body_id, referral.rules_version) == ("samt-org:IR-30", "1399.1")


def test_out_of_remit_groups_go_to_another_ministry() -> None:
    rules = load_rules(groups={"FOOD-SPOILED": "food_safety"})
    referral = route(submitted("FOOD-SPOILED", "IR-30"), rules, recorded_at=NOW)
    assert (referral.body_id, referral.body_kind) == ("ministry:health", "OTHER_MINISTRY")
    assert referral.rule_id == "out-of-remit/health"


def test_a_referral_is_a_deterministic_fact_of_its_submission() -> None:
    event = submitted("IND-PERMIT", "IR-30")
    first = route(event, RULES, recorded_at=NOW)
    assert route(event, RULES, recorded_at=NOW) == first
    assert first.event_id == derived_id(event.event_id, "referred")
    assert first.occurred_at == event.occurred_at
    assert (first.causation_id, first.correlation_id) == (event.event_id, "corr-1")
    assert first.recorded_at == NOW


def test_secretariat_letters_are_routed_too() -> None:
    letter = LetterRegistered(
        event_id="5c3b1c7e-0c7a-4e8e-8a57-94e1c1b0e0aa",
        request_id="letter-1",
        occurred_at=AFTER_MOU,
        recorded_at=AFTER_MOU,
        source="secretariat-IR-30",
        registry_number="1404/123",
        sender_organization="Karaj industrial estate",
        letter_date=date(2025, 7, 1),
        category="IND-IDLE",
        province="IR-30",
        subject="idle unit",
        body="...",
        priority="NORMAL",
    )
    assert route(letter, RULES, recorded_at=NOW).body_id == "khaneh-samt:IR-30"


def test_submissions_before_the_first_rules_route_by_the_first_version() -> None:
    old = submitted("IND-PERMIT", "IR-30", datetime(2019, 1, 1, tzinfo=TEHRAN))
    referral = route(old, RULES, recorded_at=NOW)
    assert referral.rules_version == RULES.versions[0].version
    assert referral.body_id == "samt-org:IR-30"  # the MoU's delegation came in a later version


def test_a_version_must_end_with_a_rule_that_matches_everything() -> None:
    raw = {
        "versions": [
            {
                "version": "bad",
                "effective_from": "2025-01-01T00:00:00+03:30",
                "rules": [
                    {"id": "x", "groups": ["trade"], "body_id": "b", "body_kind": "ASSOCIATION"}
                ],
            }
        ]
    }
    with pytest.raises(ValueError, match="last rule"):
        parse_rules(raw, {})
