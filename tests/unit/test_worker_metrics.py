"""The worker's overdue-request gauges, followed from breaches and recovered from states."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from samt124.contract import wire
from samt124.domain.events import SlaBreached
from samt124.domain.lifecycle import RequestState
from streams.metrics import Overdue, WorkerMetrics
from streams.pipeline import Pipeline
from tests.unit.test_pipeline import WALL, intake, pipeline, submitted


def breached_request() -> tuple[Pipeline, SlaBreached, RequestState]:
    """A request whose resolution deadline passed, with every due fact folded back."""
    p = pipeline()
    step = intake(p, submitted())
    state = step.state
    assert state is not None
    later = WALL + timedelta(days=60)
    fired = p.due(state, later, later)
    facts = [wire.decode(o.value) for o in fired.outgoing]
    (breach,) = [f for f in facts if isinstance(f, SlaBreached) and f.clock == "RESOLUTION"]
    assert fired.state is not None
    return p, breach, fired.state


def test_a_resolution_breach_makes_a_request_overdue_until_it_is_resolved() -> None:
    _, breach, state = breached_request()
    overdue = Overdue()
    overdue.on_fact(replace(breach, clock="FIRST_RESPONSE"))
    assert len(overdue) == 0  # only the resolution clock counts
    overdue.on_fact(breach)
    assert len(overdue) == 1
    an_hour_later = breach.due_at + timedelta(hours=1)
    assert overdue.oldest_seconds(an_hour_later) == 3600
    overdue.on_state(state)  # still open, same cycle
    assert len(overdue) == 1
    overdue.on_state(replace(state, status="RESOLVED"))
    assert len(overdue) == 0
    assert overdue.oldest_seconds(an_hour_later) == 0


def test_a_new_resolution_cycle_ends_the_overdue_one() -> None:
    _, breach, state = breached_request()
    overdue = Overdue()
    overdue.on_fact(breach)
    clocks = tuple(
        replace(c, cycle=c.cycle + 1) if c.kind == "RESOLUTION" else c for c in state.clocks
    )
    overdue.on_state(replace(state, clocks=clocks))
    assert len(overdue) == 0


def test_overdue_requests_are_recovered_from_stored_states_with_their_deadline() -> None:
    p, breach, state = breached_request()
    overdue = Overdue()
    now = WALL + timedelta(days=61)
    overdue.recover(state, now, p.calendar, p.policies)
    assert len(overdue) == 1
    assert overdue.oldest_seconds(now) == (now - breach.due_at).total_seconds()
    fresh = intake(pipeline(), submitted()).state
    assert fresh is not None
    overdue.clear()
    overdue.recover(fresh, now, p.calendar, p.policies)
    assert len(overdue) == 0  # no breach recorded for it


def test_dead_letters_are_counted_by_kind() -> None:
    metrics = WorkerMetrics()
    metrics.dead_letter("bad marker 0000, expected c301", failure=False)
    metrics.dead_letter("invalid RequestSubmitted: province: unknown", failure=False)
    metrics.dead_letter("ValueError while handling the message: x", failure=True)
    metrics.dead_letter("bad marker 0000, expected c301", failure=False)
    get = metrics.registry.get_sample_value
    assert get("samt124_worker_dead_letters_total", {"reason_kind": "undecodable"}) == 2
    assert get("samt124_worker_dead_letters_total", {"reason_kind": "invalid"}) == 1
    assert get("samt124_worker_dead_letters_total", {"reason_kind": "failure"}) == 1
