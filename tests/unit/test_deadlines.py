"""The SLA timer queue and the choice of "now" for the timers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from streams.deadlines import DeadlineQueue, PartitionedDeadlines
from streams.stream_time import CAUGHT_UP, LIVE_LAG, sla_now

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
    assert sla_now(wall, at(990), idle=timedelta(0)) == wall
    assert sla_now(wall, None, idle=timedelta(0)) == wall


def test_a_replay_of_history_follows_event_time_until_caught_up() -> None:
    wall = at(10 * 86_400)
    watermark = at(3_600)
    assert sla_now(wall, watermark, idle=timedelta(0)) == watermark
    assert sla_now(wall, watermark, idle=CAUGHT_UP) == wall


def test_a_pause_in_a_replay_is_not_the_end_of_the_log() -> None:
    """History paced in chunks (a slow broker, a busy machine) pauses for seconds between
    them: the watermark still holds, so no deadline fires before the answer further down."""
    wall = at(10 * 86_400)
    watermark = at(3_600)
    for pause in (2.5, 10, 30, 59):
        assert sla_now(wall, watermark, idle=timedelta(seconds=pause)) == watermark


MICROSECOND = timedelta(microseconds=1)


@given(
    st.integers(0, 3 * 86_400 * 10**6),  # when the last live message arrived, in µs
    st.integers(0, LIVE_LAG // MICROSECOND),  # how late it arrived after it occurred
    st.integers(0, 86_400 * 10**6),  # the silence since
)
def test_live_traffic_never_waits_for_the_idle_window(arrived: int, late: int, since: int) -> None:
    """A live worker's watermark falls behind the wall clock as a silence lasts: the timers
    keep the wall clock all along, the idle window or not. (In whole microseconds, as Kafka's
    and datetime's instants are: seconds as floats round, and a lag of exactly LIVE_LAG could
    come out a microsecond over it.)"""
    watermark, wall = T0 + (arrived - late) * MICROSECOND, T0 + (arrived + since) * MICROSECOND
    assert sla_now(wall, watermark, idle=since * MICROSECOND) == wall


def test_a_worker_lagging_behind_live_traffic_follows_event_time() -> None:
    wall = at(10_000)
    watermark = at(10_000 - 300)  # five minutes behind when its last message came
    assert sla_now(wall, watermark, idle=timedelta(0)) == watermark
    assert sla_now(wall, watermark, idle=timedelta(seconds=30)) == watermark


def test_each_partitions_requests_fall_due_at_that_partitions_instant() -> None:
    """One partition of a replay read further than another: a deadline between the two fires
    on the partition ahead only; the one behind may still read the answer."""
    queues = PartitionedDeadlines(lambda request_id: int(request_id[0]))
    queues.schedule("0-ahead", at(5_000))
    queues.schedule("1-behind", at(5_000))
    queues.schedule("1-early", at(1_000))
    queues.schedule("1-gone", at(10))
    queues.schedule("1-gone", None)
    assert len(queues) == 3
    instants = {0: at(7_200), 1: at(3_600)}
    assert queues.pop_due(instants.__getitem__) == [
        ("0-ahead", at(7_200)),
        ("1-early", at(3_600)),
    ]
    assert queues.pop_due({0: at(9_999), 1: at(4_999)}.__getitem__) == []
    assert queues.pop_due({0: at(9_999), 1: at(5_000)}.__getitem__) == [("1-behind", at(5_000))]
    assert len(queues) == 0


def test_a_capped_call_shares_its_room_between_the_partitions_with_requests_due() -> None:
    """Partition 0 has a large backlog due: the others still get their turn in the same call,
    and what they leave of their share goes back to partition 0."""
    queues = PartitionedDeadlines(lambda request_id: int(request_id[0]))
    for n in range(100):
        queues.schedule(f"0-{n:03}", at(n))
    queues.schedule("1-a", at(1))
    queues.schedule("2-a", at(2))
    queues.schedule("2-b", at(3))
    queues.schedule("3-later", at(9_000))  # not due: its share is left to the others
    now = {p: at(5_000) for p in range(4)}.__getitem__
    first = [request_id for request_id, _ in queues.pop_due(now, limit=12)]
    assert len(first) == 12
    assert {"1-a", "2-a", "2-b"} <= set(first)
    assert [r for r in first if r.startswith("0-")] == [f"0-{n:03}" for n in range(9)]
    rest = [request_id for request_id, _ in queues.pop_due(now, limit=1_000)]
    assert rest == [f"0-{n:03}" for n in range(9, 100)]
    assert len(queues) == 1
    assert queues.pop_due(now, limit=0) == []
