"""The worker applies an action only by the request's holder and only where the lifecycle allows
it; anything else goes to the dead-letter topic with the reason (no broker: the pipeline)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from samt124.contract import wire
from samt124.domain.events import (
    ApplicantResponded,
    Event,
    RequestAssigned,
    RequestAwaitingApplicant,
    RequestClosed,
    RequestReopened,
    RequestResolved,
    RequestResponded,
    RequestTransferred,
)
from samt124.domain.lifecycle import HEADQUARTERS, RequestState
from streams.pipeline import Pipeline, Step
from tests.unit.test_pipeline import WALL, intake, pipeline, submitted

HOLDER = "khaneh-samt:IR-30"  # IND-PERMIT in Alborz goes to Khaneh Samt


def envelope(actor: str | None, minutes: int = 0) -> dict[str, Any]:
    at = WALL - timedelta(minutes=4) + timedelta(minutes=minutes)
    return {
        "event_id": str(uuid.uuid4()),
        "request_id": "req-42",
        "occurred_at": at,
        "recorded_at": at,
        "source": "desk-124",
        "actor": actor,
    }


def assigned(actor: str | None = HOLDER, body: str = HOLDER) -> RequestAssigned:
    return RequestAssigned(**envelope(actor), body_id=body, assignee=f"{body}/expert-01")


def resolved(actor: str | None = HOLDER, minutes: int = 1) -> RequestResolved:
    return RequestResolved(
        **envelope(actor, minutes), body_id=HOLDER, outcome="SATISFIED", resolution_note="ok"
    )


def fold(p: Pipeline, *events: Event) -> RequestState:
    state: RequestState | None = None
    for event in events:
        step = intake(p, event, state)
        assert step.dead_letter is None, step.dead_letter
        state = step.state
    assert state is not None
    return state


def refused(step: Step) -> str:
    assert step.dead_letter is not None, "applied, should have been refused"
    assert step.state is None
    assert [o.topic for o in step.outgoing] == ["samt124.dlq"]
    headers = dict(step.outgoing[0].headers)
    assert headers["dlq-reason"].decode() == step.dead_letter
    return step.dead_letter


def test_the_holder_drives_a_request_from_referral_to_closing() -> None:
    p = pipeline()
    state = fold(
        p,
        submitted(),
        assigned(),
        RequestAwaitingApplicant(**envelope(HOLDER, 1), reason="invoice"),
        ApplicantResponded(**envelope(None, 2)),
        RequestResponded(**envelope(HOLDER, 3), body_id=HOLDER, message="m"),
        resolved(minutes=4),
        RequestClosed(**envelope(None, 5), satisfaction=5),
        RequestReopened(**envelope(HEADQUARTERS, 6), reason="not solved"),
    )
    assert state.status == "REOPENED"
    assert state.body_id == HOLDER


@pytest.mark.parametrize(
    ("event", "why"),
    [
        (assigned(actor="samt-org:IR-23", body="samt-org:IR-23"), "only the holder"),
        (assigned(actor=None), "only the holder"),
        (assigned(actor=HOLDER, body="samt-org:IR-30"), "names body 'samt-org:IR-30'"),
        (resolved(actor="samt-org:IR-30"), "only the holder"),
        (
            RequestTransferred(
                **envelope("samt-org:IR-23"),
                to_province="IR-23",
                to_body_id="samt-org:IR-23",
                to_body_kind="SAMT_ORGANIZATION",
                reason="mine now",
            ),
            "only the holder",
        ),
        (RequestReopened(**envelope(HOLDER), reason="r"), "only the applicant or 'samt-hq'"),
        (ApplicantResponded(**envelope(None)), "not allowed when the request is REFERRED"),
    ],
)
def test_an_action_by_another_body_or_out_of_turn_is_a_dead_letter(event: Event, why: str) -> None:
    p = pipeline()
    state = fold(p, submitted())
    reason = refused(intake(p, event, state))
    assert why in reason
    assert "req-42" in reason


def test_a_closed_request_is_not_resolved_again_and_a_replay_is_still_a_duplicate() -> None:
    p = pipeline()
    resolution = resolved()
    state = fold(p, submitted(), resolution, RequestClosed(**envelope(None, 2)))
    assert state.status == "CLOSED"
    assert "not allowed when the request is CLOSED" in refused(
        intake(p, resolved(minutes=3), state)
    )
    again = intake(p, resolution, state)  # the same event delivered twice: no dead letter
    assert again.duplicate
    assert again.dead_letter is None


def test_the_dead_letter_keeps_the_original_bytes() -> None:
    p = pipeline()
    state = fold(p, submitted())
    event = resolved(actor="samt-org:IR-23")
    step = intake(p, event, state)
    refused(step)
    assert step.outgoing[0].value == wire.encode(event)


def test_simulated_traffic_is_all_applied() -> None:
    """The simulator's actions are taken by each request's holder, in turn: none is refused."""
    from datetime import UTC, datetime

    from producers.simulator import simulate

    p = pipeline()
    states: dict[str, RequestState] = {}
    refusals = []
    for event in simulate(5, 20_000, datetime(2025, 6, 2, tzinfo=UTC)):  # Alborz delegated
        step = intake(p, event, states.get(event.request_id))
        if step.dead_letter is not None:
            refusals.append(step.dead_letter)
        elif step.state is not None:
            states[event.request_id] = step.state
    assert refusals == []
    assert len({s.body_id for s in states.values()}) > 20
