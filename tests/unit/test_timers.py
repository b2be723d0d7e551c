"""The SLA timers kept across a clean stop: written whole, read once, never half."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from streams import timers
from streams.deadlines import PartitionedDeadlines


def test_timers_come_back_as_written_and_the_file_is_gone_after(tmp_path: Path) -> None:
    path = tmp_path / "w" / "sla-timers.marshal"
    base = datetime(2026, 3, 20, 20, 29, 59, 999_999, tzinfo=UTC)
    kept = {
        0: timers.PartitionTimers(
            41, [("r-1", base), ("r-2", base + timedelta(microseconds=1))], []
        ),
        3: timers.PartitionTimers(-1, [], [("r-9", 2, base - timedelta(days=400))]),
    }
    timers.write(path, kept)
    assert timers.take(path) == kept
    assert not path.exists()
    assert timers.take(path) == {}


def test_a_damaged_file_is_not_used_and_is_removed(tmp_path: Path) -> None:
    path = tmp_path / "sla-timers.marshal"
    timers.write(path, {1: timers.PartitionTimers(7, [("r-1", datetime.now(UTC))], [])})
    path.write_bytes(path.read_bytes()[:20])
    assert timers.take(path) == {}
    assert not path.exists()
    path.write_bytes(b"not marshal at all")
    assert timers.take(path) == {}


def test_a_queue_loaded_from_its_entries_pops_the_same_requests() -> None:
    now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    first = PartitionedDeadlines(lambda request_id: int(request_id[-1]) % 2)
    for n in range(10):
        first.schedule(f"r-{n}", now + timedelta(seconds=n))
    first.schedule("r-3", None)
    second = PartitionedDeadlines(lambda request_id: int(request_id[-1]) % 2)
    for partition in (0, 1):
        second.load(partition, first.entries(partition))
    assert len(second) == len(first) == 9
    later = now + timedelta(seconds=5)
    assert sorted(second.pop_due(lambda p: later)) == sorted(first.pop_due(lambda p: later))


def test_the_worker_keeps_request_states_in_rocksdb_and_closures_in_memory(tmp_path: Path) -> None:
    from faust.stores import memory, rocksdb

    from samt124.settings import Settings
    from streams.app import Worker

    worker = Worker(Settings(home=tmp_path / "a"))
    assert isinstance(worker.requests.data, rocksdb.Store)
    # closures are written outside any event (Faust's RocksDB store needs one to pick a database)
    assert isinstance(worker.closures.data, memory.Store)
    in_memory = Worker(Settings(home=tmp_path / "b", worker_store="memory"))
    assert isinstance(in_memory.requests.data, memory.Store)
