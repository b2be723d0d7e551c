"""The worker's delivery bookkeeping (streams.delivery): nothing acknowledged before delivered."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from streams import delivery
from streams.delivery import Deliveries, Record


class Broker:
    """Delivery futures that fail the first ``failures`` times a (topic, key) is sent."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.sent: list[Record] = []
        self.attempts: dict[tuple[str, bytes | None], int] = {}

    async def send(self, record: Record) -> Any:
        self.sent.append(record)
        key = (record.topic, record.key)
        self.attempts[key] = self.attempts.get(key, 0) + 1
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.attempts[key] <= self.failures:
            future.set_exception(ConnectionError("broker away"))
        else:
            future.set_result(None)
        return future


@pytest.fixture(autouse=True)
def no_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delivery, "RETRY_SECONDS", 0.0)


def test_settle_returns_once_everything_is_delivered() -> None:
    broker = Broker(failures=0)

    async def run() -> int:
        out = Deliveries(broker.send)
        for n in range(3):
            await out.send(Record("t", str(n).encode(), b"v"))
        await out.settle()
        return len(out)

    assert asyncio.run(run()) == 0
    assert len(broker.sent) == 3


def test_failed_records_are_sent_again_until_delivered() -> None:
    broker = Broker(failures=2)

    async def run() -> None:
        out = Deliveries(broker.send)
        await out.send(Record("t", b"a", b"1"))
        await out.send(Record("t", b"b", b"2"))
        await out.settle()

    asyncio.run(run())
    assert broker.attempts == {("t", b"a"): 3, ("t", b"b"): 3}


def test_a_changelog_write_is_sent_again_with_the_current_value() -> None:
    broker = Broker(failures=1)
    table = {"r1": b"old"}

    async def run() -> None:
        out = Deliveries(broker.send)
        await out.send(Record("changelog", b"r1", table["r1"], 0, refresh=lambda: table["r1"]))
        table["r1"] = b"new"  # written again meanwhile
        await out.settle()

    asyncio.run(run())
    assert [r.value for r in broker.sent] == [b"old", b"new"]


def test_records_after_are_sent_once_the_earlier_ones_are_delivered() -> None:
    broker = Broker(failures=1)
    table = {"r1": b"first"}
    seen_when_sent: list[list[str]] = []

    def state() -> Record:
        seen_when_sent.append([r.topic for r in broker.sent])
        return Record("changelog", b"r1", table["r1"], 0)

    async def run() -> None:
        out = Deliveries(broker.send)
        await out.send(Record("province", b"r1", b"event"))
        out.after("r1", state)
        table["r1"] = b"second"
        out.after("r1", state)  # the same key again in the batch: one write, made when sent
        assert len(out) == 2
        await out.settle()
        assert len(out) == 0

    asyncio.run(run())
    # the province copy failed once and was sent again before the state went out at all
    assert seen_when_sent == [["province", "province"]]
    assert [(r.topic, r.value) for r in broker.sent] == [
        ("province", b"event"),
        ("province", b"event"),
        ("changelog", b"second"),
        ("changelog", b"second"),  # its own first attempt failed too: sent again
    ]
