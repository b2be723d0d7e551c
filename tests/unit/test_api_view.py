"""The API's view: a body's queue page is its open requests by next deadline, kept as states
arrive; an announced closure moves the deadlines; a request's last update and notes are the
actions the worker took in."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta

from api.view import View, fact_of
from samt124.domain.calendar import Calendar, Closure, load_config
from samt124.domain.catalogue import CATALOGUE
from samt124.domain.events import (
    Event,
    Requester,
    RequestResolved,
    RequestResponded,
    RequestSubmitted,
    SlaClock,
)
from samt124.domain.lifecycle import Context, RequestState, deadline, decide
from samt124.domain.routing import load_rules
from samt124.domain.sla import load_policies
from samt124.settings import Settings
from streams.pipeline import Pipeline

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
CLOCKS: tuple[SlaClock, ...] = ("FIRST_RESPONSE", "RESOLUTION", "OPERATIONAL")
PROVINCES = ("IR-23", "IR-30", "IR-10")


def submitted(rng: random.Random) -> RequestSubmitted:
    at = NOW - timedelta(minutes=rng.uniform(1, 5 * 24 * 60))
    return RequestSubmitted(
        event_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        request_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        occurred_at=at,
        recorded_at=at,
        source="portal",
        channel="WEB_PORTAL",
        requester=Requester(national_id="0012345678", name="Applicant"),
        category=rng.choice(sorted(CATALOGUE)),
        province=rng.choice(PROVINCES),
        subject="s",
        body="b",
        priority="NORMAL",
    )


def fold(state: RequestState | None, event: Event) -> RequestState:
    context = Context(load_rules(), load_policies(), Calendar(load_config()), NOW)
    folded = decide(state, event, context).state
    assert folded is not None
    return folded


def expected_order(states: list[RequestState], body: str, calendar: Calendar) -> list[str]:
    """The queue recomputed from the states alone: next running deadline, then submission."""
    policies = load_policies()
    far = datetime.max.replace(tzinfo=UTC)
    keyed = []
    for state in states:
        if state.body_id != body or state.status in ("RESOLVED", "CLOSED"):
            continue
        dues = [
            due
            for kind in CLOCKS
            if (clock := state.clock(kind)) is not None and clock.running
            if (due := deadline(state, kind, calendar, policies)) is not None
        ]
        keyed.append((min(dues, default=far), state.submitted_at, state.request_id))
    return [request_id for *_, request_id in sorted(keyed)]


def test_a_queue_page_is_the_bodys_open_requests_by_next_deadline_and_moves_with_closures() -> None:
    rng = random.Random(15)
    view = View(Pipeline.load(Settings()))
    states = {}
    for _ in range(400):
        state = fold(None, submitted(rng))
        states[state.request_id] = state
        view.state(state.request_id, state.to_bytes())
    body = "samt-org:IR-23"
    order = expected_order(list(states.values()), body, Calendar(load_config()))
    assert len(order) > 50
    total, first = view.queue(body, 0, 20)
    assert total == len(order)
    assert [r.request_id for r in first] == order[:20]
    pages = [view.queue(body, start, start + 20)[1] for start in range(0, total, 20)]
    assert [r.request_id for page in pages for r in page] == order

    # one request resolved by its holder leaves the queue; an SLA-free rewrite keeps its place
    gone = order[3]
    resolved = fold(
        states[gone],
        RequestResolved(
            event_id=str(uuid.uuid4()),
            request_id=gone,
            occurred_at=NOW,
            recorded_at=NOW,
            source="api:tehran",
            actor=body,
            body_id=body,
            outcome="VIOLATOR",
            resolution_note="closed with a fine",
        ),
    )
    states[gone] = resolved
    view.state(gone, resolved.to_bytes())
    view.state(order[4], states[order[4]].to_bytes())  # the same state again
    assert [r.request_id for r in view.queue(body, 0, total)[1]] == [i for i in order if i != gone]
    assert view.row(gone) is None

    # filters: the kept rows in queue order, their own total
    late = view.queue(body, 0, 10_000, lambda row: row.next_deadline is not None)[1]
    assert [r.request_id for r in late] == [
        r.request_id for r in view.queue(body, 0, total)[1] if r.next_deadline is not None
    ]

    # Tehran's offices close for the next three days: its deadlines move, Alborz's do not
    closure = Closure("IR-23", date(2026, 11, 29), date(2026, 12, 1))
    alborz_before = {r.request_id: r.next_deadline for r in view.queue("samt-org:IR-30", 0, 500)[1]}
    tehran_before = {r.request_id: r.next_deadline for r in view.queue(body, 0, 500)[1]}
    view.closed(closure)
    closed = Calendar(load_config()).with_closure(closure)
    assert [r.request_id for r in view.queue(body, 0, 500)[1]] == expected_order(
        list(states.values()), body, closed
    )
    after = {r.request_id: r.next_deadline for r in view.queue(body, 0, 500)[1]}
    moved = [i for i in after if after[i] != tehran_before[i]]
    assert moved  # deadlines past the closure's first day
    assert all(after[i] > tehran_before[i] for i in moved)  # type: ignore[operator]
    assert {
        r.request_id: r.next_deadline for r in view.queue("samt-org:IR-30", 0, 500)[1]
    } == alborz_before


def test_a_requests_last_update_and_notes_are_the_actions_the_worker_took_in() -> None:
    rng = random.Random(7)
    view = View(Pipeline.load(Settings()))
    state = fold(None, submitted(rng))
    view.state(state.request_id, state.to_bytes())
    assert view.updated(state, None) == (state.submitted_at, None)

    def action(message: str, minutes: int) -> RequestResponded:
        at = NOW + timedelta(minutes=minutes)
        return RequestResponded(
            event_id=str(uuid.uuid4()),
            request_id=state.request_id,
            occurred_at=at,
            recorded_at=at,
            source="api:tehran",
            actor=state.body_id,
            body_id=state.body_id,
            message=message,
        )

    first, refused = action("inspected", 5), action("forged", 9)
    view.acted(state.request_id, fact_of(first))
    assert view.updated(state, None) == (state.submitted_at, None)  # not taken in yet
    taken = fold(state, first)
    view.acted(state.request_id, fact_of(refused))  # on the intake, never in the state
    view.state(taken.request_id, taken.to_bytes())
    assert view.updated(taken, None) == (first.occurred_at, "inspected")


def test_an_intake_record_the_api_took_in_is_skipped_once_read_back_and_only_then() -> None:
    view = View(Pipeline.load(Settings()))
    # confirmed before the follower reaches it: skipped once, then forgotten
    view.published(2, 10)
    assert view.read_back(2, 9) is False
    assert view.read_back(2, 10) is True
    assert view.read_back(2, 10) is False
    # the follower read it before the confirmation came: decoded as any other, and not kept
    # waiting for a read that will not come
    assert view.read_back(0, 4) is False
    view.published(0, 4)
    assert view.read_back(0, 4) is False
    # partitions are apart: an offset read on one does not settle another's
    view.published(1, 4)
    assert view.read_back(1, 4) is True
