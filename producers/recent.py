"""Where simulated traffic must start so that it ends about now (``samt124 simulate --recent``).

How long ``count`` events last depends on where they start: the national intake follows the hour
of the day and the day of the week, and bodies work only in office hours, so ten hours of traffic
at night may be two hours of it at noon. No formula gives the start; a search does. Each step
runs the simulator dry (the seed makes it deterministic), and the search keeps a bracket: a start
whose last event lies by ``now`` and one whose last event lies after it. The answer is the
bracket's early end, so every one of the ``count`` events has happened by ``now``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from producers.simulator import REQUESTS_PER_DAY, simulate

SPAN_FRACTION = 500  # close enough: the last event within a 500th of the span before now
LEAST_TOLERANCE = timedelta(minutes=1)
BRACKETING = 20  # steps back at most to a start ending by now (300 searches of 2,000 events: 0-4)
NARROWING = 30  # dry runs at most to come closer to now (the same 300 searches: 0-20)


class NoStartFound(RuntimeError):
    """The search found no start whose traffic ends by ``now`` (a defect, not bad input)."""


def last_event_at(seed: int, count: int, start: datetime, *, requests_per_day: float) -> datetime:
    """When the ``count``-th simulated event from ``start`` occurs (a dry run).

    The bodies assigned do not draw from the seed's random stream, so the simulator's cheap
    default stands in for the router's bodies here: the times are the same.
    """
    last = start
    for event in simulate(seed, count, start, requests_per_day=requests_per_day):
        last = event.occurred_at
    return last


def start_ending_by(
    now: datetime, seed: int, count: int, *, requests_per_day: float = REQUESTS_PER_DAY
) -> datetime:
    """The latest start (to within :data:`SPAN_FRACTION`) whose ``count`` events end by ``now``."""
    return latest_start(
        lambda start: last_event_at(seed, count, start, requests_per_day=requests_per_day), now
    )


def latest_start(end_of: Callable[[datetime], datetime], now: datetime) -> datetime:
    """A start ``s`` with ``end_of(s) <= now``, as late as the search can make it.

    ``end_of`` need only grow with its argument roughly (it jumps where traffic lands in a
    quiet night); the search never trusts that, it only narrows a bracket it has evaluated:
    interpolation between its ends (regula falsi), halving when one end has stood still twice.
    When its budget of dry runs is spent it answers with the best start it has evaluated.
    """
    late, late_end = now, end_of(now)
    if late_end <= now:
        return now
    early = now - (late_end - now)
    early_end = end_of(early)
    for _ in range(BRACKETING):
        if early_end <= now:
            break
        late, late_end = early, early_end  # not early enough: step back, at least half as far again
        early = late - max(2 * (late_end - now), (now - late) / 2)
        early_end = end_of(early)
    if early_end > now:
        raise NoStartFound(f"no start ending by {now.isoformat()} in {BRACKETING} dry runs")
    still = 0  # how many steps in a row the same end of the bracket moved
    moved_early: bool | None = None
    for _ in range(NARROWING):
        tolerance = max(LEAST_TOLERANCE, (now - early) / SPAN_FRACTION)
        if now - early_end <= tolerance or late - early <= tolerance:
            break
        if still >= 2:
            guess = early + (late - early) / 2
        else:
            share = (now - early_end) / (late_end - early_end)
            guess = early + (late - early) * min(max(share, 0.01), 0.99)
        end = end_of(guess)
        if end <= now:
            still = still + 1 if moved_early else 1
            moved_early = True
            early, early_end = guess, end
        else:
            still = still + 1 if moved_early is False else 1
            moved_early = False
            late, late_end = guess, end
    return early


__all__ = ["NoStartFound", "last_event_at", "latest_start", "start_ending_by"]
