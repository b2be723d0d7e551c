"""Faust's end of a recovery, with the stream partitions fetched again only once it is over.

At the end of each recovery Faust (0.15) resumes fetching the stream partitions, seeks them to
their committed offsets, and then resumes its flow control, which empties every stream queue.
Whatever the fetcher delivered between the seek and that emptying was thrown away, and nothing
read it again: ``route``'s offset check (:mod:`streams.sequence`) found such a gap after almost
every start onto a backlog, and the restart it asked for met the same gap again.

:class:`TableManager` gives the app a :class:`Recovery` that holds back Faust's request to
resume the stream partitions until the rest of the step (the seek, the emptying) is done, then
makes it. Nothing is fetched for them in between, so nothing fetched is thrown away; the seek
already put them at their committed offsets.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from typing import Any

from faust.tables.manager import TableManager as FaustTableManager
from faust.tables.recovery import Recovery as FaustRecovery
from faust.types import TP


class Recovery(FaustRecovery):  # type: ignore[misc]
    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        await self._then_resume(super().on_recovery_completed(generation_id), generation_id)

    async def _resume_streams(self, generation_id: int = 0) -> None:
        await self._then_resume(super()._resume_streams(generation_id), generation_id)

    async def _then_resume(self, step: Awaitable[None], generation_id: int) -> None:
        consumer = self.app.consumer
        held: set[TP] = set()

        def hold(tps: Iterable[TP]) -> None:
            held.update(tps)

        consumer.resume_partitions = hold  # for this step only: the instance's own attribute
        try:
            await step
        finally:
            del consumer.resume_partitions
        if held and self.app.consumer_generation_id == generation_id:
            consumer.resume_partitions(held)


class TableManager(FaustTableManager):  # type: ignore[misc]
    """Faust's table manager, with :class:`Recovery` as its recovery service."""

    @property
    def recovery(self) -> Any:
        if self._recovery is None:  # type: ignore[has-type]
            self._recovery = Recovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery
