"""A guard against reading past messages that were never processed.

After a broker outage and the rebalance that follows it, the consumer under Faust can resume a
partition past the messages it had fetched but not yet handed to the agent, and Faust then
commits past them as if they were a gap in the log (which ``samt124.intake`` and ``samt124.sla``
never have: they are neither compacted nor transactional). The messages are skipped for good.
The kill run (``tests/chaos/test_kills.py``) found it: a broker SIGKILLed while the worker lagged
left about 2,000 offsets per partition unrouted. The same family of faults is reported upstream
(faust-streaming issues #221, prefetched events after a rebalance, and #606, wrong offset commit
in case of gaps).

:class:`Sequence` checks what the agents actually see: after each (re)assignment, a partition's
first message must be the one at the group's committed offset, and every later one must follow
the one before. A message that comes later than expected means some were skipped; nothing past
it has been acknowledged yet, so nothing past the committed offset is lost as long as the worker
does not go on: :func:`streams.restart.restart` replaces the process with a fresh one, which
resumes from there. A message that comes earlier than expected is one read again within the
generation; it is passed over (:meth:`Sequence.see`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger("samt124.worker")
RETRY_SECONDS = 1.0

TopicPartition = tuple[str, int]
Committed = Callable[[TopicPartition], Awaitable[int | None]]


class Skipped(Exception):
    """Messages of a partition were never handed to the agent."""


@dataclass
class Sequence:
    """The offset each partition's next message must have (the pure part of the guard).

    A sequence belongs to one generation of the consumer group (the messages carry the
    generation they were fetched in): the first message of a new generation starts again.
    """

    expected: dict[TopicPartition, tuple[int | None, int]] = field(default_factory=dict)

    def knows(self, tp: TopicPartition, generation: int | None) -> bool:
        known = self.expected.get(tp)
        return known is not None and known[0] == generation

    def start(self, tp: TopicPartition, generation: int | None, committed: int | None) -> None:
        """The group's committed offset (None: none yet, the first message sets the start)."""
        if committed is None:
            self.expected.pop(tp, None)
        else:
            self.expected[tp] = (generation, committed)

    def see(self, tp: TopicPartition, generation: int | None, offset: int) -> bool:
        """Record a message; raise :class:`Skipped` when messages before it were left out.

        Return False for a message this generation has already passed: one read again after
        Faust sought the partition back to its committed offset while what it had fetched was
        still queued. Its first reading was handled in full, or this process would not be here,
        so it is not handled twice: a repeat would meet the request's later state and, refused,
        be dead-lettered again for another reason.
        """
        known = self.expected.get(tp)
        expected = known[1] if known is not None and known[0] == generation else None
        if expected is not None and offset > expected:
            raise Skipped(
                f"{tp[0]}[{tp[1]}]: offsets {expected}..{offset - 1} were never handed to the "
                f"worker (the next message read is at {offset})"
            )
        self.expected[tp] = (generation, max(offset + 1, expected or 0))
        return expected is None or offset == expected


async def committed_with_retry(committed: Committed, tp: TopicPartition) -> int | None:
    """The group's committed offset of ``tp``, asking again while the broker does not answer."""
    while True:
        try:
            return await committed(tp)
        except Exception as error:
            log.warning("cannot read the committed offset of %s[%d]: %s", *tp, error)
            await asyncio.sleep(RETRY_SECONDS)
