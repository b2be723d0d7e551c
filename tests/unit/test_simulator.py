"""The simulator: deterministic, ordered, plausible national traffic."""

from __future__ import annotations

import hashlib
import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone

from producers.simulator import simulate, working_hours
from samt124.contract import wire
from samt124.domain.catalogue import CATALOGUE, GROUPS
from samt124.domain.events import Event, LetterRegistered, RequestSubmitted
from samt124.domain.validation import validate

START = datetime(2025, 10, 25, 4, 30, tzinfo=UTC)  # a Saturday, 08:00 in Tehran
TEHRAN = timezone(timedelta(hours=3, minutes=30))


def _digest(seed: int, count: int) -> str:
    digest = hashlib.sha256()
    for event in simulate(seed, count, START):
        digest.update(wire.encode(event))
    return digest.hexdigest()


def test_same_seed_same_bytes() -> None:
    assert _digest(7, 20_000) == _digest(7, 20_000)
    assert _digest(7, 2_000) != _digest(8, 2_000)


def _events(count: int = 60_000) -> list[Event]:
    return list(simulate(3, count, START, requests_per_day=300, closure_probability=0.05))


def test_events_come_in_time_order_and_are_valid() -> None:
    events = _events()
    assert len(events) == 60_000
    assert all(a.occurred_at <= b.occurred_at for a, b in itertools.pairwise(events))
    assert events[0].occurred_at >= START
    now = events[-1].occurred_at
    assert [e for e in events if validate(e, now=now)] == []


def test_lifecycles_are_complete_and_referrals_left_to_the_router() -> None:
    kinds = Counter(type(event).__name__ for event in _events())
    assert "RequestReferred" not in kinds
    for kind in (
        "RequestSubmitted",
        "LetterRegistered",
        "RequestAssigned",
        "RequestAwaitingApplicant",
        "ApplicantResponded",
        "RequestResponded",
        "RequestTransferred",
        "RequestResolved",
        "RequestClosed",
        "RequestReopened",
        "OfficeClosureAnnounced",
    ):
        assert kinds[kind] > 0, kind
    assert kinds["RequestClosed"] > kinds["RequestSubmitted"] / 2


def test_channel_province_and_category_mix() -> None:
    events = _events()
    submitted = [e for e in events if isinstance(e, RequestSubmitted)]
    channels = Counter(e.channel for e in submitted).most_common()
    assert [channel for channel, _ in channels[:2]] == ["PHONE_124", "WEB_PORTAL"]
    assert {channel for channel, _ in channels} == {
        "PHONE_124",
        "WEB_PORTAL",
        "SAMTEMA_APP",
        "SMS",
        "IN_PERSON",
    }
    assert any(isinstance(e, LetterRegistered) for e in events)
    provinces = Counter(e.province for e in submitted)
    assert provinces.most_common(1)[0][0] == "IR-23"
    assert len(provinces) == 31
    alborz = {CATALOGUE[e.category].group for e in submitted if e.province == "IR-30"}
    assert alborz >= set(GROUPS) - {"correspondence"}


def test_each_request_reads_as_one_causal_chain() -> None:
    events = _events(20_000)
    by_id = {event.event_id: event for event in events}
    for event in events:
        if event.causation_id is not None:
            cause = by_id.get(event.causation_id)
            if cause is not None:
                assert cause.request_id == event.request_id
                assert cause.occurred_at <= event.occurred_at


def test_working_hours_skip_nights_and_weekends() -> None:
    wednesday_noon = datetime(2025, 10, 29, 12, 0, tzinfo=TEHRAN)
    later = working_hours(wednesday_noon, 3).astimezone(TEHRAN)
    assert later == datetime(2025, 11, 1, 9, 0, tzinfo=TEHRAN)  # Saturday, after Thu and Fri
    night = datetime(2025, 10, 26, 22, 0, tzinfo=TEHRAN)
    assert working_hours(night, 0.5).astimezone(TEHRAN) == datetime(
        2025, 10, 27, 8, 30, tzinfo=TEHRAN
    )
