"""The SLA timer queue of one worker: the next due instant of each open request.

A heap of ``(due, request_id)`` with lazy deletion: pushing a request again supersedes its
earlier entry, and :meth:`DeadlineQueue.pop_due` returns each due request once. Scales to
millions of open requests: O(log n) per push and pop, one dict entry per request.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from datetime import datetime


class DeadlineQueue:
    def __init__(self) -> None:
        self._heap: list[tuple[datetime, str]] = []
        self._due: dict[str, datetime] = {}

    def __len__(self) -> int:
        return len(self._due)

    def schedule(self, request_id: str, due: datetime | None) -> None:
        """Set (or clear, with ``None``) when ``request_id`` must be looked at next."""
        if due is None:
            self._due.pop(request_id, None)
            return
        if self._due.get(request_id) == due:
            return
        self._due[request_id] = due
        heapq.heappush(self._heap, (due, request_id))
        if len(self._heap) > 4 * len(self._due) + 1024:
            self._compact()

    def next_due(self) -> datetime | None:
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: datetime, limit: int = 10_000) -> list[str]:
        """Requests whose time has come (at most ``limit``), removed from the queue."""
        out: list[str] = []
        while self._heap and len(out) < limit:
            due, request_id = self._heap[0]
            if self._due.get(request_id) != due:
                heapq.heappop(self._heap)
                continue
            if due > now:
                break
            heapq.heappop(self._heap)
            del self._due[request_id]
            out.append(request_id)
        return out

    def clear(self) -> None:
        self._heap.clear()
        self._due.clear()

    def entries(self) -> list[tuple[str, datetime]]:
        """Every request in the queue with when it is due."""
        return list(self._due.items())

    def load(self, entries: list[tuple[str, datetime]]) -> None:
        """Add ``entries`` (as from :meth:`entries`) at once."""
        self._due.update(entries)
        self._compact()

    def _drop_stale(self) -> None:
        while self._heap and self._due.get(self._heap[0][1]) != self._heap[0][0]:
            heapq.heappop(self._heap)

    def _compact(self) -> None:
        self._heap = [(due, request_id) for request_id, due in self._due.items()]
        heapq.heapify(self._heap)


class PartitionedDeadlines:
    """One :class:`DeadlineQueue` per intake partition: each request's in its partition's, so
    that each partition's requests are judged at that partition's own instant (the event time
    it has read, while it replays history; :mod:`streams.stream_time`)."""

    def __init__(self, partition_of: Callable[[str], int]) -> None:
        self._partition_of = partition_of
        self._queues: dict[int, DeadlineQueue] = {}

    def __len__(self) -> int:
        return sum(len(queue) for queue in self._queues.values())

    def schedule(self, request_id: str, due: datetime | None, partition: int | None = None) -> None:
        """Set (or clear) when ``request_id`` must be looked at next; ``partition`` is its intake
        partition when the caller knows it already (worked out from its id otherwise)."""
        if partition is None:
            partition = self._partition_of(request_id)
        queue = self._queues.get(partition)
        if queue is None:
            if due is None:
                return
            queue = self._queues[partition] = DeadlineQueue()
        queue.schedule(request_id, due)

    def pop_due(
        self, now_of: Callable[[int], datetime], limit: int = 10_000
    ) -> list[tuple[str, datetime]]:
        """Requests whose time has come at their partition's instant ``now_of(partition)``
        (at most ``limit``), each with that instant, removed from the queue.

        Each partition with requests due gets an equal share of ``limit`` first, and what a
        partition leaves of its share goes to the others in order: a partition with a large
        backlog due holds none of the others back for more than one call."""
        queues = sorted(self._queues.items())
        if not queues or limit <= 0:
            return []
        instants = {partition: now_of(partition) for partition, _ in queues}
        share = max(1, limit // len(queues))
        out: list[tuple[str, datetime]] = []
        for rounds_share in (share, limit):
            for partition, queue in queues:
                room = min(rounds_share, limit - len(out))
                if room <= 0:
                    return out
                now = instants[partition]
                out += [(request_id, now) for request_id in queue.pop_due(now, room)]
        return out

    def clear(self) -> None:
        self._queues.clear()

    def entries(self, partition: int) -> list[tuple[str, datetime]]:
        queue = self._queues.get(partition)
        return queue.entries() if queue is not None else []

    def load(self, partition: int, entries: list[tuple[str, datetime]]) -> None:
        """Add the requests of ``partition`` with when they are due."""
        if entries:
            self._queues.setdefault(partition, DeadlineQueue()).load(entries)
