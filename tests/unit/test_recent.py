"""``simulate --recent``: the search for a start whose traffic has all happened by now."""

from __future__ import annotations

import bisect
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producers.recent import (
    LEAST_TOLERANCE,
    SPAN_FRACTION,
    NoStartFound,
    latest_start,
    start_ending_by,
)
from producers.simulator import simulate

NOW = datetime(2026, 11, 28, 21, 0, tzinfo=UTC)  # Sunday 00:30 in Tehran


@pytest.mark.parametrize(
    "now",
    [
        NOW,  # a start found by repeating "now minus the span" three times gave 369 of 2,000
        datetime(2026, 11, 28, 3, 0, tzinfo=UTC),  # the same gave 440
        datetime(2026, 12, 3, 21, 0, tzinfo=UTC),  # Thursday night: 455
        datetime(2026, 12, 4, 9, 0, tzinfo=UTC),  # Friday, the weekend: no office hours
        datetime(2026, 12, 5, 8, 0, tzinfo=UTC),  # Saturday, office hours
    ],
)
def test_every_requested_event_has_happened_by_now_and_the_last_lately(now: datetime) -> None:
    start = start_ending_by(now, 7, 2_000)
    events = list(simulate(7, 2_000, start))
    assert len(events) == 2_000
    assert events[-1].occurred_at <= now
    assert now - events[-1].occurred_at < timedelta(hours=6)
    assert now - start > timedelta(hours=3)  # 2,000 events are hours of national traffic


def _monotone(offset_s: float, slopes: list[float]) -> Callable[[datetime], datetime]:
    """A non-decreasing end-of-traffic function, piecewise linear by the hour around ``NOW``,
    always after its start."""
    origin = NOW - timedelta(days=3)
    knots = [0.0]
    for slope in slopes:
        knots.append(knots[-1] + slope * 3_600)

    def end_of(start: datetime) -> datetime:
        seconds = (start - origin).total_seconds()
        hour = min(max(int(seconds // 3_600), 0), len(slopes) - 1)
        value = knots[hour] + slopes[hour] * (seconds - hour * 3_600)
        return max(start + timedelta(minutes=1), origin + timedelta(seconds=offset_s + value))

    return end_of


@settings(max_examples=200, deadline=None)
@given(
    offset_h=st.floats(min_value=1.0, max_value=40.0),
    slopes=st.lists(st.floats(min_value=0.05, max_value=20.0), min_size=24 * 6, max_size=24 * 6),
)
def test_the_start_found_ends_by_now_and_a_tolerance_later_would_not(
    offset_h: float, slopes: list[float]
) -> None:
    end_of = _monotone(offset_h * 3_600, slopes)
    found = latest_start(end_of, NOW)
    assert end_of(found) <= NOW
    tolerance = max(LEAST_TOLERANCE, (NOW - found) / SPAN_FRACTION)
    close = NOW - end_of(found) <= tolerance
    assert close or end_of(found + tolerance) > NOW


def test_a_traffic_that_never_ends_by_now_is_an_error_not_a_hang() -> None:
    with pytest.raises(NoStartFound, match="no start ending by"):
        latest_start(lambda start: NOW + timedelta(hours=1), NOW)


def test_an_end_that_jumps_back_and_forth_still_gives_a_start_that_ends_by_now() -> None:
    """Real traffic is not monotone in its start: a later start can end earlier."""
    jumps = [NOW - timedelta(hours=h) for h in range(48, 0, -1)]

    def end_of(start: datetime) -> datetime:
        index = bisect.bisect(jumps, start)
        wobble = timedelta(hours=3 if index % 2 else -2)
        return start + timedelta(hours=10) + wobble

    found = latest_start(end_of, NOW)
    assert end_of(found) <= NOW
    assert NOW - end_of(found) < timedelta(hours=6)


def _gap_at_ten_hours(calls: list[datetime]) -> Callable[[datetime], datetime]:
    def end_of(start: datetime) -> datetime:
        calls.append(start)
        late = start > NOW - timedelta(hours=10)
        return start + timedelta(hours=10 if late else 5)  # a 5-hour gap no start closes

    return end_of


def test_a_gap_no_start_closes_ends_the_search_once_the_bracket_is_narrow() -> None:
    calls: list[datetime] = []
    end_of = _gap_at_ten_hours(calls)
    found = latest_start(end_of, NOW)
    assert end_of(found) <= NOW
    assert NOW - timedelta(hours=10, minutes=2) < found <= NOW - timedelta(hours=10)
    assert len(calls) < 40


def test_a_search_out_of_dry_runs_answers_with_a_start_that_ends_by_now(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("producers.recent.NARROWING", 2)
    calls: list[datetime] = []
    end_of = _gap_at_ten_hours(calls)
    found = latest_start(end_of, NOW)
    assert len(calls) == 2 + 2  # now, the first guess, two narrowing steps
    assert end_of(found) <= NOW
