"""The end of a recovery resumes the stream partitions only after Faust's own step
(streams.recovery)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

from faust.types import TP

from samt124.settings import Settings
from streams.recovery import Recovery

INTAKE = TP("samt124.intake", 0)


class Consumer:
    def __init__(self) -> None:
        self.resumed: list[set[TP]] = []

    def resume_partitions(self, tps: set[TP]) -> None:
        self.resumed.append(set(tps))


def _run(generation_then: int) -> tuple[list[set[TP]], list[set[TP]]]:
    consumer = Consumer()
    app = SimpleNamespace(consumer=consumer, consumer_generation_id=7)
    during: list[set[TP]] = []

    async def step() -> None:  # as Faust's: resume the streams, seek, then empty the queues
        consumer.resume_partitions({INTAKE})
        await asyncio.sleep(0)
        during.extend(consumer.resumed)
        app.consumer_generation_id = generation_then

    asyncio.run(Recovery._then_resume(SimpleNamespace(app=app), step(), 7))  # type: ignore[arg-type]
    assert "resume_partitions" not in vars(consumer)  # the method is the class's again
    return during, consumer.resumed


def test_the_stream_partitions_are_resumed_once_the_step_is_over() -> None:
    during, after = _run(generation_then=7)
    assert during == []
    assert after == [{INTAKE}]


def test_nothing_is_resumed_when_another_rebalance_began_meanwhile() -> None:
    during, after = _run(generation_then=8)
    assert during == after == []


def test_the_worker_uses_this_recovery(tmp_path: Path) -> None:
    from streams.app import Worker

    worker = Worker(Settings(home=tmp_path))
    assert isinstance(worker.app.tables.recovery, Recovery)
