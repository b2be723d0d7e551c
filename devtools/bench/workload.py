"""The traffic the benchmarks publish: samt124's own simulator, generated once per run."""

from __future__ import annotations

import functools
from datetime import datetime, timedelta

from samt124.contract import wire
from samt124.domain.events import Event, LetterRegistered, RequestSubmitted, event_type

SEED = 124
START = datetime.fromisoformat("2025-05-25T07:00:00+03:30")
Message = tuple[bytes, bytes, list[tuple[str, bytes]]]  # key, value, headers


@functools.cache
def events(count: int, seed: int = SEED) -> tuple[Event, ...]:
    """``count`` simulated events (realistic lifecycles, the router's bodies)."""
    from producers.simulator import simulate
    from samt124.domain.routing import referral_bodies

    return tuple(simulate(seed, count, START, body_for=referral_bodies()))


def encoded(items: tuple[Event, ...]) -> list[Message]:
    return [(wire.key(e), wire.encode(e), wire.headers(e)) for e in items]


def openings(items: tuple[Event, ...]) -> int:
    """How many requests the events open (each gets one derived ``RequestReferred``)."""
    return sum(isinstance(e, RequestSubmitted | LetterRegistered) for e in items)


def mean_size(items: tuple[Event, ...]) -> int:
    """The mean encoded size in bytes (the record size given to Kafka's perf tools)."""
    sample = items[:2_000]
    return round(sum(len(wire.encode(e)) for e in sample) / len(sample))


def warm_up() -> Event:
    """A submission a day before the workload: starts the pipeline without moving its clocks."""
    for event in events(200, seed=SEED + 1):
        if isinstance(event, RequestSubmitted):
            return _shifted(event)
    raise RuntimeError("the simulator produced no submission")


def submissions(count: int) -> list[Event]:
    """``count`` submissions of distinct requests, a day before the workload."""
    found = [
        _shifted(e) for e in events(50 * count, seed=SEED + 2) if isinstance(e, RequestSubmitted)
    ]
    if len(found) < count:
        raise RuntimeError(f"the simulator produced {len(found)} submissions, not {count}")
    return found[:count]


def _shifted(event: Event) -> Event:
    from samt124.domain.events import replace

    day = timedelta(days=1)
    return replace(event, occurred_at=event.occurred_at - day, recorded_at=event.recorded_at - day)


def types(items: tuple[Event, ...]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for event in items:
        counts[event_type(event)] = counts.get(event_type(event), 0) + 1
    return counts
