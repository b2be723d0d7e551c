"""Each request's SLA clocks at an instant, from the deadlines the worker recorded.

The worker publishes a ``SlaDeadlinesSet`` fact whenever a fact starts, pauses, resumes, stops,
hands over or restarts a request's clock; the sink keeps one row per fact and clock in
``sla_deadlines``. Reports fold those rows, up to the instant asked for (``--as-of``, default
now), into where each clock stood then: its cycle, target, the working time banked and since
when it runs. Whether a request is past a deadline, and by how much, is computed here from that
and the instant, not from the presence of ``SlaBreached`` facts, so the same report on the same
data gives the same figures whether the worker is running, stopped or lagging.

A clock is past its deadline when its working time reaches its target (as the worker breaches
it). Its deadline is the instant the running clock reaches the target, counted with the
calendar the report uses: office hours, official holidays and the closures announced by the
instant asked for. Overdue is measured from that deadline to the instant, on the clock and in
working hours of the province holding the request (a paused clock's working overdue stays as it
was when it paused).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from samt124.domain.calendar import Calendar
from samt124.domain.tehran_time import to_us

# The clocks, by their name in the data and in report columns.
CLOCKS = (
    ("FIRST_RESPONSE", "first_response"),
    ("RESOLUTION", "resolution"),
    ("OPERATIONAL", "operational"),
)


def as_of_ms(instant: datetime) -> int:
    """An instant in epoch milliseconds, as ``occurred_ms`` counts it."""
    return to_us(instant) // 1000


def deadlines_sql(db: str, as_of: datetime) -> str:
    """Every deadlines row known at ``as_of`` (facts that occurred by then), in fact order."""
    return f"""
SELECT
    request_id, clock, toUInt32(cycle) AS cycle, target_us, elapsed_us, running,
    running_since_ms, stopped, province, occurred_ms
FROM {db}.sla_deadlines_unique
WHERE occurred_ms <= {as_of_ms(as_of)}
ORDER BY request_id, occurred_ms, event_id"""


@dataclass(frozen=True, slots=True)
class ClockAt:
    """One clock of one request as its latest deadlines fact left it.

    ``deadline_us`` is when the current cycle reached (or will reach, if it keeps running) its
    target, counted with the report's calendar; ``None`` when it has no target or has not run
    since its last fact left it below the target.
    """

    cycle: int
    target_us: int
    elapsed_us: int
    running_since_us: int | None
    stopped: bool
    province: str
    deadline_us: int | None

    def elapsed_at(self, at_us: int, calendar: Calendar) -> int:
        """Working microseconds of the current cycle at ``at_us``."""
        if self.running_since_us is None or at_us <= self.running_since_us:
            return self.elapsed_us
        return self.elapsed_us + calendar.working_us_between(
            self.province, self.running_since_us, at_us
        )

    def overdue(self, at_us: int, calendar: Calendar) -> tuple[int, int] | None:
        """``(working, clock)`` microseconds past the deadline at ``at_us``; None: not past it."""
        if not self.target_us:
            return None
        elapsed = self.elapsed_at(at_us, calendar)
        if elapsed < self.target_us:
            return None
        deadline = self.deadline_us if self.deadline_us is not None else at_us
        return elapsed - self.target_us, max(0, at_us - deadline)


def step(before: ClockAt | None, row: Sequence[Any], calendar: Calendar) -> ClockAt:
    """The clock after one :func:`deadlines_sql` row, from where ``before`` left it."""
    _, _, cycle, target, elapsed, running, since_ms, stopped, province = row[:9]
    since = int(since_ms) * 1000 if int(running) else None
    target, elapsed, cycle = int(target), int(elapsed), int(cycle)
    deadline = before.deadline_us if before is not None and before.cycle == cycle else None
    if since is not None and target and elapsed < target:
        deadline = calendar.add_working_us(str(province), since, target - elapsed)
    return ClockAt(
        cycle=cycle,
        target_us=target,
        elapsed_us=elapsed,
        running_since_us=since,
        stopped=bool(int(stopped)),
        province=str(province),
        deadline_us=deadline,
    )


def fold(rows: Iterable[Sequence[Any]], calendar: Calendar) -> dict[str, dict[str, ClockAt]]:
    """Per request and clock name (``first_response``...), the clock at the end of ``rows``
    (:func:`deadlines_sql` rows, in fact order)."""
    names = dict(CLOCKS)
    found: dict[str, dict[str, ClockAt]] = {}
    for row in rows:
        name = names.get(str(row[1]))
        if name is None:
            continue
        clocks = found.setdefault(str(row[0]), {})
        clocks[name] = step(clocks.get(name), row, calendar)
    return found


@dataclass(frozen=True, slots=True)
class Breach:
    """A cycle of a request's clock that reached its target: at ``due_us``, in ``province``
    (the province holding the request then, as its deadlines facts say)."""

    request_id: str
    clock: str
    cycle: int
    province: str
    due_us: int


def breaches(rows: Iterable[Sequence[Any]], calendar: Calendar, at_us: int) -> list[Breach]:
    """Every clock cycle that reached its target by ``at_us`` before it stopped, from
    :func:`deadlines_sql` rows in fact order (the same fold as :func:`fold`), each once.

    A cycle is judged when the next fact of its clock comes (a new cycle, a pause, a stop, a
    hand-over: had its working time reached the target by then?) and, for the cycle the last
    fact left, at ``at_us``. Whether a ``SlaBreached`` fact was published plays no part.
    """
    names = dict(CLOCKS)
    clocks: dict[tuple[str, str], ClockAt] = {}
    found: dict[tuple[str, str, int], Breach] = {}

    def judge(request_id: str, name: str, clock: ClockAt, until_us: int) -> None:
        key = (request_id, name, clock.cycle)
        if key not in found and clock.overdue(until_us, calendar) is not None:
            due = clock.deadline_us if clock.deadline_us is not None else until_us
            found[key] = Breach(request_id, name, clock.cycle, clock.province, due)

    for row in rows:
        name = names.get(str(row[1]))
        if name is None:
            continue
        key = (str(row[0]), name)
        before = clocks.get(key)
        if before is not None:
            judge(key[0], name, before, min(int(row[9]) * 1000, at_us))
        clocks[key] = step(before, row, calendar)
    for (request_id, name), clock in clocks.items():
        judge(request_id, name, clock, at_us)
    return list(found.values())
