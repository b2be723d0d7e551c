"""Which "now" the SLA timers use.

Live traffic carries event times close to the wall clock: the timers use the wall clock, so a
deadline fires on time even when no event arrives. When the worker replays history (a back-fill,
a restart after a long outage, a simulation), event times lag far behind the wall clock; firing
on the wall clock would breach requests whose answer is still further down the log. Then the
timers follow the event-time watermark of the partition, until the partition is caught up
(idle), when the wall clock takes over again — deadlines that passed while the worker was down
fire as soon as it is back.
"""

from __future__ import annotations

from datetime import datetime, timedelta

LIVE_LAG = timedelta(seconds=60)


def sla_now(wall: datetime, watermark: datetime | None, *, caught_up: bool) -> datetime:
    """The instant up to which SLA facts are due."""
    if watermark is None or caught_up or wall - watermark <= LIVE_LAG:
        return wall
    return watermark
