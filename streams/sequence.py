"""A guard against reading past messages that were never processed.

After a broker outage and the rebalance that follows it, the consumer under Faust can resume a
partition past the messages it had fetched but not yet handed to the agent, and Faust then
commits past them as if they were a gap in the log (which ``samt124.intake`` and ``samt124.sla``
never have: they are neither compacted nor transactional). The messages are skipped for good.

:class:`Sequence` checks what the agents actually see: after each (re)assignment, a partition's
first message must be the one at the group's committed offset, and every later one must follow
the one before. A message that comes later than expected means some were skipped; nothing past
it has been acknowledged yet, so nothing past the committed offset is lost as long as the worker
does not go on: :func:`restart` replaces the process with a fresh one, which resumes from there.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
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
    """The offset each partition's next message must have (the pure part of the guard)."""

    expected: dict[TopicPartition, int] = field(default_factory=dict)

    def forget(self) -> None:
        """After a rebalance: the next message of each partition starts a new sequence."""
        self.expected.clear()

    def knows(self, tp: TopicPartition) -> bool:
        return tp in self.expected

    def start(self, tp: TopicPartition, committed: int | None) -> None:
        """The group's committed offset (None: none yet, the first message sets the start)."""
        if committed is not None:
            self.expected[tp] = committed

    def see(self, tp: TopicPartition, offset: int) -> None:
        """Record a message; raise :class:`Skipped` when messages before it were left out."""
        expected = self.expected.get(tp)
        if expected is not None and offset > expected:
            raise Skipped(
                f"{tp[0]}[{tp[1]}]: offsets {expected}..{offset - 1} were never handed to the "
                f"worker (the next message read is at {offset})"
            )
        # an offset below the expected one is a message read again: at-least-once
        self.expected[tp] = max(offset + 1, expected or 0)


async def committed_with_retry(committed: Committed, tp: TopicPartition) -> int | None:
    """The group's committed offset of ``tp``, asking again while the broker does not answer."""
    while True:
        try:
            return await committed(tp)
        except Exception as error:
            log.warning("cannot read the committed offset of %s[%d]: %s", *tp, error)
            await asyncio.sleep(RETRY_SECONDS)


def restart(reason: str) -> None:
    """Replace this process with a fresh worker: it resumes from the committed offsets."""
    log.error("%s; restarting the worker to read them from the last committed offset", reason)
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
