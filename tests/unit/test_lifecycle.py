"""The request lifecycle fold: referral, SLA clocks across pauses, reopens, transfers, closures."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from samt124.domain.calendar import Calendar, load_config
from samt124.domain.events import (
    ApplicantResponded,
    Event,
    OfficeClosureAnnounced,
    RequestAssigned,
    RequestAwaitingApplicant,
    Requester,
    RequestReferred,
    RequestReopened,
    RequestResolved,
    RequestResponded,
    RequestSubmitted,
    RequestTransferred,
    SlaBreached,
    SlaClock,
    SlaDeadlinesSet,
)
from samt124.domain.lifecycle import (
    Context,
    RequestState,
    closure_of,
    deadline,
    decide,
    due_sla_facts,
    next_due,
)
from samt124.domain.routing import load_rules
from samt124.domain.sla import load_policies

TEHRAN = ZoneInfo("Asia/Tehran")
RULES = load_rules()
POLICIES = load_policies()
CALENDAR = Calendar(load_config())
HOUR = timedelta(hours=1)


def tehran(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=TEHRAN)


SUBMITTED_AT = tehran(2026, 1, 10, 9, 0)  # Saturday; offices 08:00-14:00


def ctx(calendar: Calendar = CALENDAR) -> Context:
    return Context(RULES, POLICIES, calendar, now=datetime(2026, 1, 10, 6, 0, tzinfo=UTC))


def envelope(at: datetime) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "request_id": "req-1",
        "occurred_at": at,
        "recorded_at": at,
        "source": "province-IR-30",
    }


def submitted(
    category: str = "MKT-PRICE-LABEL", province: str = "IR-30", at: datetime = SUBMITTED_AT
) -> RequestSubmitted:
    return RequestSubmitted(
        **envelope(at),
        channel="PHONE_124",
        requester=Requester(national_id="0012345678", name="Applicant"),
        category=category,
        province=province,
        subject="s",
        body="b",
        priority="NORMAL",
    )


def fold(*events: Event, calendar: Calendar = CALENDAR) -> RequestState:
    state: RequestState | None = None
    for event in events:
        state = decide(state, event, ctx(calendar)).state
    assert state is not None
    return state


def due(state: RequestState, kind: str = "RESOLUTION") -> datetime:
    result = deadline(state, kind, CALENDAR, POLICIES)  # type: ignore[arg-type]
    assert result is not None
    return result


def test_a_new_request_is_referred_at_once_and_its_clocks_start() -> None:
    event = submitted("IND-PERMIT")
    decision = decide(None, event, ctx())
    assert decision.state is not None
    referral, deadlines = decision.outputs
    assert isinstance(referral, RequestReferred)
    assert (referral.body_id, referral.rule_id) == ("khaneh-samt:IR-30", "IR-30/mou-khaneh-samt")
    assert isinstance(deadlines, SlaDeadlinesSet)
    state = decision.state
    assert (state.status, state.body_id, state.policy_version) == (
        "REFERRED",
        "khaneh-samt:IR-30",
        "1404.1",
    )
    assert [(c.kind, c.cycle, c.policy_id, c.running) for c in state.clocks] == [
        ("FIRST_RESPONSE", 1, "normal-delegated", True),
        ("RESOLUTION", 1, "normal-delegated", True),
        ("OPERATIONAL", 1, "normal-delegated", True),
    ]
    # 60 working hours of 6 a day: ten working days, skipping Thursdays, Fridays and 3 Feb.
    assert due(state) == tehran(2026, 1, 25, 9, 0)
    assert due(state, "OPERATIONAL") == tehran(2026, 1, 19, 9, 0)
    # where the clocks stand, as the worker publishes it for the reports
    assert (deadlines.resolution_due_at, deadlines.operational_due_at) == (
        tehran(2026, 1, 25, 9, 0),
        tehran(2026, 1, 19, 9, 0),
    )
    assert (deadlines.resolution_cycle, deadlines.resolution_elapsed_us) == (1, 0)
    assert deadlines.resolution_running_since == event.occurred_at
    assert deadlines.resolution_target_us == 60 * 3_600_000_000
    assert deadlines.occurred_at == event.occurred_at


def test_the_same_category_in_another_province_goes_to_its_samt_organization() -> None:
    state = fold(submitted("IND-PERMIT", province="IR-10"))
    assert (state.body_id, state.body_kind) == ("samt-org:IR-10", "SAMT_ORGANIZATION")


def test_duplicates_are_ignored() -> None:
    event = submitted()
    first = decide(None, event, ctx())
    assert first.state is not None
    again = decide(first.state, event, ctx())
    assert (again.duplicate, again.outputs, again.state) == (True, (), first.state)
    echoed = decide(first.state, first.outputs[0], ctx())  # our own referral read back
    assert echoed.duplicate
    resubmitted = decide(first.state, submitted(), ctx())  # the same request under a new id
    assert resubmitted.duplicate
    assert resubmitted.outputs == ()


def test_seen_event_ids_are_bounded() -> None:
    state = fold(
        submitted(),
        *(RequestAssigned(**envelope(SUBMITTED_AT), body_id="b", assignee="a") for _ in range(100)),
    )
    assert len(state.seen) == 64


def test_pause_and_resume_shift_the_deadline_by_the_paused_working_time() -> None:
    opened = fold(submitted())
    paused_at, resumed_at = tehran(2026, 1, 10, 11, 0), tehran(2026, 1, 12, 10, 30)
    state = fold(
        submitted(),
        RequestAwaitingApplicant(**envelope(paused_at), reason="invoice needed"),
        ApplicantResponded(**envelope(resumed_at)),
    )
    paused = CALENDAR.working_seconds_between("IR-30", paused_at, resumed_at)
    assert paused == (3 + 6 + 2.5) * 3600  # rest of Saturday, all Sunday, Monday morning
    assert due(state) == CALENDAR.add_working_time("IR-30", due(opened), paused)
    assert state.status == "IN_PROGRESS"


def test_a_paused_request_has_no_running_deadline_and_nothing_falls_due() -> None:
    state = fold(
        submitted(), RequestAwaitingApplicant(**envelope(tehran(2026, 1, 10, 10, 0)), reason="r")
    )
    assert deadline(state, "RESOLUTION", CALENDAR, POLICIES) is None
    assert next_due(state, CALENDAR, POLICIES) is None
    assert due_sla_facts(state, tehran(2026, 6, 1, 9, 0), CALENDAR, POLICIES) == ()


def test_breach_facts_are_emitted_once_per_cycle() -> None:
    state = fold(
        submitted(), RequestResponded(**envelope(SUBMITTED_AT + HOUR), body_id="b", message="m")
    )
    late = tehran(2026, 1, 26, 9, 0)  # past the resolution breach (25 Jan 09:00)
    facts = due_sla_facts(state, late, CALENDAR, POLICIES)
    names = sorted(
        (
            f.clock,
            type(f).__name__,
            getattr(f, "threshold_percent", None) or getattr(f, "level", None),
        )
        for f in facts
    )
    assert ("RESOLUTION", "SlaBreached", None) in names
    assert ("RESOLUTION", "SlaWarning", 75) in names
    assert ("RESOLUTION", "RequestEscalated", "PROVINCE") in names
    assert ("RESOLUTION", "RequestEscalated", "MINISTRY") not in names  # 12 h after breach
    assert not any(f.clock == "FIRST_RESPONSE" for f in facts)  # stopped in time
    assert due_sla_facts(state, late, CALENDAR, POLICIES) == facts  # same ids after a crash
    breach = next(f for f in facts if type(f).__name__ == "SlaBreached" and f.clock == "RESOLUTION")
    assert breach.occurred_at == tehran(2026, 1, 25, 9, 0)
    for fact in facts:
        state = decide(state, fact, ctx()).state  # type: ignore[assignment]
    assert due_sla_facts(state, late, CALENDAR, POLICIES) == ()
    assert next_due(state, CALENDAR, POLICIES) == tehran(2026, 1, 27, 9, 0)  # MINISTRY at +12 h


def test_next_due_is_the_first_warning() -> None:
    state = fold(submitted())
    # FIRST_RESPONSE: 6 h target, 50 % after 3 h of work.
    assert next_due(state, CALENDAR, POLICIES) == tehran(2026, 1, 10, 12, 0)


def test_a_stop_after_a_missed_deadline_still_emits_the_breach() -> None:
    resolved_at = tehran(2026, 1, 11, 12, 0)  # first response was due Sun 11 Jan 09:00
    decision = decide(
        fold(submitted()),
        RequestResolved(
            **envelope(resolved_at), body_id="b", outcome="SATISFIED", resolution_note="n"
        ),
        ctx(),
    )
    breaches = [f for f in decision.outputs if isinstance(f, SlaBreached)]
    assert [(f.clock, f.occurred_at) for f in breaches] == [
        ("FIRST_RESPONSE", tehran(2026, 1, 11, 9, 0))
    ]
    assert decision.state is not None
    assert decision.state.status == "RESOLVED"
    assert next_due(decision.state, CALENDAR, POLICIES) is None


def test_reopening_starts_a_new_resolution_cycle() -> None:
    reopened_at = tehran(2026, 2, 1, 9, 0)
    state = fold(
        submitted(),
        RequestResolved(
            **envelope(tehran(2026, 1, 11, 9, 0)),
            body_id="b",
            outcome="SATISFIED",
            resolution_note="n",
        ),
        RequestReopened(**envelope(reopened_at), reason="not solved"),
    )
    resolution = state.clock("RESOLUTION")
    first_response = state.clock("FIRST_RESPONSE")
    assert resolution is not None
    assert first_response is not None
    assert (resolution.cycle, resolution.elapsed, resolution.running) == (2, 0, True)
    assert first_response.stopped
    assert state.status == "REOPENED"
    assert due(state) == CALENDAR.add_working_time("IR-30", reopened_at, 60 * 3600)
    assert not any(k.startswith("RESOLUTION|1|") for k in state.emitted)
    warning = next(
        f
        for f in due_sla_facts(state, tehran(2026, 3, 1, 9, 0), CALENDAR, POLICIES)
        if f.clock == "RESOLUTION"
    )
    assert warning.cycle == 2


def test_a_transfer_gives_the_new_body_its_own_operational_clock() -> None:
    opened = fold(submitted("IND-PERMIT"))  # Khaneh Samt, operational 36 h
    moved_at = tehran(2026, 1, 12, 12, 0)
    state = fold(
        submitted("IND-PERMIT"),
        RequestTransferred(
            **envelope(moved_at),
            to_province="IR-30",
            to_body_id="samt-org:IR-30",
            to_body_kind="SAMT_ORGANIZATION",
            reason="needs an inspection",
        ),
    )
    operational = state.clock("OPERATIONAL")
    assert operational is not None
    assert (operational.cycle, operational.policy_id) == (2, "normal")
    assert due(state, "OPERATIONAL") == CALENDAR.add_working_time("IR-30", moved_at, 48 * 3600)
    assert due(state) == due(opened)  # the applicant's clock kept running
    assert (state.body_id, state.status) == ("samt-org:IR-30", "REFERRED")


def transferred(at: datetime, province: str, body_id: str, kind: str) -> RequestTransferred:
    return RequestTransferred(
        **envelope(at),
        to_province=province,
        to_body_id=body_id,
        to_body_kind=kind,  # type: ignore[arg-type]
        reason="r",
    )


def test_a_transfer_to_another_province_keeps_the_applicants_clocks() -> None:
    opened = fold(submitted("MKT-PRICE-LABEL"))
    moved_at = tehran(2026, 1, 11, 12, 0)
    state = fold(
        submitted("MKT-PRICE-LABEL"),
        transferred(moved_at, "IR-23", "samt-org:IR-23", "SAMT_ORGANIZATION"),
    )
    kinds: tuple[SlaClock, ...] = ("FIRST_RESPONSE", "RESOLUTION")
    for kind in kinds:
        before, after = opened.clock(kind), state.clock(kind)
        assert before is not None
        assert after is not None
        assert (after.cycle, after.policy_id) == (before.cycle, before.policy_id)
    operational = state.clock("OPERATIONAL")
    assert operational is not None
    assert operational.cycle == 2
    # the time elapsed in Alborz is banked; the rest counts in Tehran's calendar
    resolution = state.clock("RESOLUTION")
    assert resolution is not None
    elapsed = CALENDAR.working_seconds_between("IR-30", SUBMITTED_AT, moved_at)
    assert resolution.elapsed == elapsed * 1_000_000


def test_a_transfer_to_another_ministry_starts_its_resolution_cycle_under_its_policy() -> None:
    moved_at = tehran(2026, 1, 11, 12, 0)
    events: list[Event] = [
        submitted("MKT-PRICE-LABEL"),  # normal: resolution 60 h at SAMT
        transferred(moved_at, "IR-30", "ministry:agriculture", "OTHER_MINISTRY"),
    ]
    state = fold(*events)
    resolution = state.clock("RESOLUTION")
    assert resolution is not None
    assert (resolution.cycle, resolution.policy_id) == (2, "other-ministry")
    assert due(state) == CALENDAR.add_working_time("IR-30", moved_at, 120 * 3600)
    first = state.clock("FIRST_RESPONSE")
    assert first is not None
    assert (first.cycle, first.policy_id) == (1, "normal")  # not restarted
    # SAMT's 60 h pass without a breach: the request is no longer SAMT's to resolve
    later = tehran(2026, 1, 31, 9, 0)
    facts = [f for f in due_sla_facts(state, later, CALENDAR, POLICIES) if f.clock == "RESOLUTION"]
    assert facts
    assert {(f.cycle, f.policy_id) for f in facts} == {(2, "other-ministry")}
    # back into SAMT's remit: a new cycle under SAMT's policy
    back_at = tehran(2026, 1, 13, 9, 0)
    events.append(transferred(back_at, "IR-30", "samt-org:IR-30", "SAMT_ORGANIZATION"))
    back = fold(*events)
    resolution = back.clock("RESOLUTION")
    assert resolution is not None
    assert (resolution.cycle, resolution.policy_id) == (3, "normal")
    assert due(back) == CALENDAR.add_working_time("IR-30", back_at, 60 * 3600)


def test_a_transfer_out_of_remit_while_awaiting_the_applicant_starts_paused() -> None:
    paused_at = tehran(2026, 1, 10, 10, 0)
    moved_at = tehran(2026, 1, 10, 11, 0)
    state = fold(
        submitted("MKT-PRICE-LABEL"),
        RequestAwaitingApplicant(**envelope(paused_at), reason="r"),
        transferred(moved_at, "IR-30", "ministry:health", "OTHER_MINISTRY"),
    )
    resolution = state.clock("RESOLUTION")
    assert resolution is not None
    assert resolution.paused
    assert (resolution.cycle, resolution.elapsed) == (2, 0)
    resumed = tehran(2026, 1, 11, 9, 0)
    running = decide(state, ApplicantResponded(**envelope(resumed)), ctx()).state
    assert running is not None
    assert due(running) == CALENDAR.add_working_time("IR-30", resumed, 120 * 3600)


def test_a_closure_announced_after_submission_moves_the_deadline_later() -> None:
    state = fold(submitted())
    announcement = OfficeClosureAnnounced(
        **envelope(tehran(2026, 1, 12, 20, 0)),
        province="IR-30",
        first_day=date(2026, 1, 13),
        last_day=date(2026, 1, 14),
        reason="air pollution",
    )
    assert decide(state, announcement, ctx()).state == state
    closed = CALENDAR.with_closure(closure_of(announcement))
    before = due(state)
    after = deadline(state, "RESOLUTION", closed, POLICIES)
    assert after == CALENDAR.add_working_time("IR-30", before, 12 * 3600)  # two days later


def test_events_about_unknown_requests_leave_no_state() -> None:
    event = RequestAssigned(**envelope(SUBMITTED_AT), body_id="b", assignee="a")
    assert decide(None, event, ctx()).state is None


def test_state_survives_a_json_round_trip() -> None:
    state = fold(
        submitted("IND-PERMIT"),
        RequestAwaitingApplicant(**envelope(tehran(2026, 1, 10, 10, 0)), reason="r"),
    )
    text = json.dumps(state.to_json())
    assert RequestState.from_json(json.loads(text)) == state


actions = st.lists(
    st.sampled_from(["pause", "resume", "respond", "resolve", "reopen", "transfer", "sla"]),
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(actions)
def test_any_history_folds_to_a_state_that_round_trips_and_deduplicates(names: list[str]) -> None:
    at = SUBMITTED_AT
    events: list[Event] = [submitted("IND-PERMIT")]
    for name in names:
        at += 5 * HOUR
        env = envelope(at)
        if name == "pause":
            events.append(RequestAwaitingApplicant(**env, reason="r"))
        elif name == "resume":
            events.append(ApplicantResponded(**env))
        elif name == "respond":
            events.append(RequestResponded(**env, body_id="b", message="m"))
        elif name == "resolve":
            events.append(
                RequestResolved(**env, body_id="b", outcome="SATISFIED", resolution_note="n")
            )
        elif name == "reopen":
            events.append(RequestReopened(**env, reason="r"))
        elif name == "transfer":
            events.append(
                RequestTransferred(
                    **env,
                    to_province="IR-23",
                    to_body_id="samt-org:IR-23",
                    to_body_kind="SAMT_ORGANIZATION",
                    reason="r",
                )
            )
    state: RequestState | None = None
    emitted: set[str] = set()
    for event in events:
        decision = decide(state, event, ctx())
        state = decision.state
        assert state is not None
        facts = due_sla_facts(state, event.occurred_at, CALENDAR, POLICIES)
        for fact in (*decision.outputs, *facts):
            assert fact.event_id not in emitted  # each fact exactly once
            emitted.add(fact.event_id)
        for fact in facts:
            state = decide(state, fact, ctx()).state
            assert state is not None
    assert state is not None
    assert RequestState.from_json(json.loads(json.dumps(state.to_json()))) == state
    assert RequestState.from_bytes(state.to_bytes()) == state
    # what changelogs written through Faust's JSON serializer hold reads back the same
    assert RequestState.from_bytes(json.dumps(state.to_json()).encode()) == state
    assert decide(state, events[-1], ctx()).duplicate


@settings(max_examples=3_000, deadline=None)
@given(
    st.lists(
        st.one_of(st.text(), st.integers(), st.uuids(), st.sampled_from(["RESOLUTION", "آ"])),
        max_size=5,
    )
)
def test_derived_ids_are_the_uuid5_of_their_parts(parts: list[object]) -> None:
    from samt124.domain.events import DERIVED_ID_NAMESPACE, derived_id

    name = "|".join(str(part) for part in parts)
    try:
        expected = str(uuid.uuid5(DERIVED_ID_NAMESPACE, name))
    except UnicodeEncodeError:  # a lone surrogate: no UTF-8 for it, no id either
        with pytest.raises(UnicodeEncodeError):
            derived_id(*parts)
        return
    assert derived_id(*parts) == expected
