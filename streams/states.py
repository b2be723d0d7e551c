"""The request states as the worker reads and writes them.

A state is the worker's at once (the next event of the request reads it) but it is *stored* —
in the table's store, which a restart reads back — only once its changelog record is delivered.
So the store never holds a state whose effects (the province copy, the SLA facts it marks as
published) might not have reached Kafka: after a SIGKILL, a persistent store says no more than
the changelog does, and the worker repeats what did not arrive, as it does with an in-memory one.

Two stores (``SAMT124_WORKER_STORE``):

* ``rocksdb`` — Faust's RocksDB store (through ``rocksdict``), one database per partition in
  the worker's data directory, with the changelog offset it holds. A restart reads only the
  changelog records written after that offset, instead of the whole changelog.
* ``memory`` — Faust's in-memory store, filled from the whole changelog at each start.

The worker reads and writes states by partition (the intake partition of the request, the same
as its changelog partition): Faust's RocksDB store otherwise picks the database from the event
being processed, and a batch holds events of several partitions.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from faust.types import TP


class States:
    """The ``requests`` table's states, by request id and partition."""

    def __init__(self, table: Any, *, persistent: bool) -> None:
        self.table = table
        self.persistent = persistent
        # states not yet on the changelog (persistent store only): request id -> raw state
        self._pending: dict[str, bytes] = {}
        self._offsets: dict[int, int] = {}

    @property
    def pending(self) -> int:
        return len(self._pending)

    def get(self, request_id: str, partition: int) -> bytes | None:
        if not self.persistent:
            raw = self.table.data.get(request_id)
            return bytes(raw) if raw else None
        raw = self._pending.get(request_id)
        if raw is not None:
            return raw
        store = self.table.data
        stored = store._db_for_partition(partition).get(store._encode_key(request_id))
        return bytes(stored) if stored else None

    def put(self, request_id: str, raw: bytes, partition: int) -> None:
        """The state the worker reads from now on; stored once :meth:`delivered` says so."""
        if self.persistent:
            self._pending[request_id] = raw
        else:
            self.table.data[request_id] = raw

    def delivered(self, request_id: str, raw: bytes, partition: int, offset: int) -> None:
        """``raw``, the state of ``request_id``, is on the changelog at ``offset``: store it,
        and the offset the store is now up to (a restart reads the changelog from there)."""
        if not self.persistent:
            return
        store = self.table.data
        store._db_for_partition(partition).put(store._encode_key(request_id), raw)
        if self._pending.get(request_id) == raw:
            del self._pending[request_id]
        if offset > self._offsets.get(partition, -1):
            self._offsets[partition] = offset
            store.set_persisted_offset(TP(self.table.changelog_topic_name, partition), offset)

    def recovered(self, held: set[int]) -> dict[int, int]:
        """After a recovery: the store, caught up from the changelog, is the truth. Drop the
        states not yet on the changelog (what the timer had not stored is worked out again) and
        return the changelog offset the store is up to on each partition held (-1: none;
        persistent store only)."""
        self._pending.clear()
        self._offsets.clear()
        if not self.persistent:
            return {}
        store = self.table.data
        for partition in held:
            offset = store.persisted_offset(TP(self.table.changelog_topic_name, partition))
            self._offsets[partition] = -1 if offset is None else int(offset)
        return dict(self._offsets)

    @property
    def offsets(self) -> dict[int, int]:
        """The changelog offset the store is up to, by partition (persistent store only)."""
        return dict(self._offsets)

    def items(self) -> list[tuple[str, bytes]]:
        """Every (request id, raw state) in the in-memory store."""
        return list(self.table.items())

    def items_of(self, partition: int) -> Iterator[tuple[str, bytes]]:
        """Every stored (request id, raw state) of ``partition`` (persistent store), read as
        it goes: an iterator over RocksDB is not disturbed by later writes."""
        store = self.table.data
        for key, value in store._visible_items(store._db_for_partition(partition)):
            yield store._decode_key(key), value
