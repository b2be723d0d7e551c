"""Which "now" the SLA timers use.

Live traffic carries event times close to the wall clock: the timers use the wall clock, so a
deadline fires on time even when no event arrives. When the worker replays history (a back-fill,
a restart after a long outage, a simulation), event times lag far behind the wall clock; firing
on the wall clock would breach requests whose answer is still further down the log. Then the
timers follow the event-time watermark, until the worker has been idle for :data:`CAUGHT_UP`,
when the wall clock takes over again — deadlines that passed while the worker was down fire once
it has read everything there was.

Whether the worker is live or replaying is judged when the last message arrived: live when the
watermark was then within :data:`LIVE_LAG` of the wall clock, however long the silence since.
So the idle window costs live traffic nothing and can be long: a shorter one would let any
pause of a replay (a slow broker, paced history published in chunks, a busy machine) pass for
the end of the log and fire every deadline up to the wall clock, including those whose answer
comes next.

Each intake partition has its own instant (its own watermark and idle time), and the requests
of a partition are judged at it (:class:`streams.deadlines.PartitionedDeadlines`): a worker
reading several partitions fires no deadline of a request whose partition has not read that far,
however far the others have read.
"""

from __future__ import annotations

from datetime import datetime, timedelta

LIVE_LAG = timedelta(seconds=60)
CAUGHT_UP = LIVE_LAG  # no message for this long: the log has been read to its end


def sla_now(wall: datetime, watermark: datetime | None, *, idle: timedelta) -> datetime:
    """The instant up to which SLA facts are due, ``idle`` after the last message arrived."""
    if watermark is None or idle >= CAUGHT_UP or (wall - idle) - watermark <= LIVE_LAG:
        return wall
    return watermark
