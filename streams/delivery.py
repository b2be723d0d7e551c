"""Sends whose delivery the worker waits for before it acknowledges what caused them.

Faust commits an input offset once the message is acknowledged and ``producer.flush()`` returned.
That flush drains Faust's own send buffer only for as long as the buffer keeps moving (it gives up
after 0.1 s without progress, e.g. while the broker restarts), so a table write queued with
``send_changelog`` can still be waiting when the offset of the message that caused it is
committed; a SIGKILL then loses the write for good. The worker therefore hands every record it
produces (province events, derived facts, dead letters and its own changelog writes) straight to
the Kafka client, keeps the delivery futures, and settles them — resending what failed, until it
is delivered — before the batch that caused them is acknowledged.

Records that say what was done (the request state, which remembers the events it has seen and
the SLA facts it has published) go out only after what was done is in Kafka: a batch's
changelog writes are sent by :meth:`Deliveries.after` once its province events, referrals, SLA
facts and dead letters are delivered. Otherwise a crash could leave a state on the changelog
that has seen an event whose copy to its province never arrived (on a cluster, the two are
separate requests to separate leaders), and the replay would skip it as a duplicate.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("samt124.worker")
RETRY_SECONDS = 1.0


@dataclass(frozen=True)
class Record:
    topic: str
    key: bytes | None
    value: bytes | None
    partition: int | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    # a changelog write is resent with the key's value at the time of the retry, so that an
    # older value can never land after a newer one
    refresh: Callable[[], bytes | None] | None = None
    # called with the record as sent and the client's answer (its offset) once it is delivered
    delivered: Callable[[Record, Any], None] | None = None


Send = Callable[[Record], Awaitable[Awaitable[Any]]]


class Deliveries:
    """The records one agent (or the timer) sent and has not yet seen delivered."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self._pending: list[tuple[Record, Awaitable[Any]]] = []
        self._after: dict[Hashable, Callable[[], Record]] = {}

    def __len__(self) -> int:
        return len(self._pending) + len(self._after)

    def after(self, identity: Hashable, record: Callable[[], Record]) -> None:
        """Send ``record()`` at :meth:`settle`, once everything sent before is delivered.

        One record per ``identity`` (a table key, say): a later call replaces an earlier one,
        and the record is made when it is sent, so it carries the value of that moment.
        """
        self._after[identity] = record

    async def send(self, record: Record) -> None:
        """Hand ``record`` to the client (waits only while its buffer is full)."""
        self._pending.append((record, await self._send(record)))

    async def settle(self) -> None:
        """Return once every record sent so far is delivered, then the ones registered with
        :meth:`after` are; failures are sent again until they are delivered."""
        await self._delivered()
        if self._after:
            later, self._after = self._after, {}
            for make in later.values():
                await self.send(make())
            await self._delivered()

    async def _delivered(self) -> None:
        while self._pending:
            pending, self._pending = self._pending, []
            results = await asyncio.gather(*(f for _, f in pending), return_exceptions=True)
            failed = []
            for (record, _), result in zip(pending, results, strict=True):
                if isinstance(result, BaseException):
                    failed.append((record, result))
                elif record.delivered is not None:
                    record.delivered(record, result)
            if not failed:
                continue
            log.warning(
                "%d of %d records not delivered (%s); sending them again in %.0f s",
                len(failed),
                len(pending),
                failed[0][1],
                RETRY_SECONDS,
            )
            await asyncio.sleep(RETRY_SECONDS)
            for record, _ in failed:
                await self.send(record if record.refresh is None else _refreshed(record))


def _refreshed(record: Record) -> Record:
    assert record.refresh is not None
    return Record(
        record.topic,
        record.key,
        record.refresh(),
        record.partition,
        record.headers,
        record.refresh,
        record.delivered,
    )
