"""The SLA timer queue and the choice of "now" for the timers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from streams.deadlines import DeadlineQueue
from streams.stream_time import sla_now

T0 = datetime(2025, 6, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_rescheduled_request_fires_once_at_its_latest_time() -> None:
    queue = DeadlineQueue()
    queue.schedule("a", at(10))
    queue.schedule("b", at(5))
    queue.schedule("a", at(20))  # a closure moved it later
    assert queue.pop_due(at(15)) == ["b"]
    assert queue.pop_due(at(19)) == []
    assert queue.pop_due(at(20)) == ["a"]
    assert queue.pop_due(at(1000)) == []
    assert len(queue) == 0


def test_clearing_a_deadline_stops_it() -> None:
    queue = DeadlineQueue()
    queue.schedule("a", at(1))
    queue.schedule("a", None)
    assert queue.pop_due(at(10)) == []
    assert queue.next_due() is None


@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 10_000)), max_size=300))
def test_pop_due_returns_exactly_the_due_requests_once(plan: list[tuple[int, int]]) -> None:
    queue = DeadlineQueue()
    latest: dict[str, datetime] = {}
    for request, seconds in plan:
        queue.schedule(f"r{request}", at(seconds))
        latest[f"r{request}"] = at(seconds)
    now = at(5_000)
    due = queue.pop_due(now, limit=len(latest) + 1)
    assert sorted(due) == sorted(r for r, t in latest.items() if t <= now)
    assert len(queue) == sum(1 for t in latest.values() if t > now)
    assert queue.pop_due(now) == []


def test_live_traffic_uses_the_wall_clock() -> None:
    wall = at(1000)
    assert sla_now(wall, at(990), caught_up=False) == wall
    assert sla_now(wall, None, caught_up=False) == wall


def test_a_replay_of_history_follows_event_time_until_caught_up() -> None:
    wall = at(10 * 86_400)
    watermark = at(3_600)
    assert sla_now(wall, watermark, caught_up=False) == watermark
    assert sla_now(wall, watermark, caught_up=True) == wall
