"""Helpers for the chaos tier: a broker and a server of the test's own, faults, and read-backs.

Tests of this tier kill things. They never touch the shared test services: a test that SIGKILLs
the broker or stops ClickHouse starts its own broker and server on free ports, in its own home,
through the same code as ``samt124 local up`` (:class:`OwnServices`), and stops them at the end.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from consumers.clickhouse.engine import opened
from consumers.clickhouse.migrations import migrate
from devtools.local import clickhouse, kafka
from samt124 import waiting
from samt124.domain.events import Event
from samt124.kafka.reader import count_records
from samt124.kafka.topics import Topics
from samt124.settings import Settings, parse_clickhouse_url

REPO = Path(__file__).resolve().parents[2]
log = logging.getLogger("samt124.chaos")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def say(message: str) -> None:
    """A line in the test's log (shown by pytest on failure, or with ``-s``/``-rA``)."""
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- services of the test's own ----------------------------------------------------------------


@dataclass
class OwnServices:
    """A broker and a ClickHouse server that only this test uses, on free ports."""

    settings: Settings

    @classmethod
    def create(cls, home: Path, *, namespace: str = "chaos", partitions: int = 4) -> OwnServices:
        settings = Settings(
            home=home,
            cache=REPO / ".samt124" / "cache",
            topic_namespace=namespace,
            partitions=partitions,
            local_kafka_port=free_port(),
            local_controller_port=free_port(),
            local_clickhouse_port=free_port(),
            local_clickhouse_http_port=free_port(),
        )
        return cls(settings)

    @property
    def clickhouse_url(self) -> str:
        return clickhouse.url(self.settings)

    def kafka_up(self) -> float:
        """Start (or restart on the same data) the broker; seconds until it answered."""
        started = time.monotonic()
        kafka.up(self.settings, timeout=180)
        return time.monotonic() - started

    def kafka_kill(self) -> None:
        """SIGKILL the broker's process group: no clean shutdown, no flush of its logs."""
        _kill_group(kafka.status(self.settings).pid)

    def clickhouse_up(self) -> float:
        started = time.monotonic()
        clickhouse.up(self.settings, timeout=120)
        return time.monotonic() - started

    def clickhouse_down(self) -> None:
        clickhouse.down(self.settings)

    def down(self) -> None:
        with contextlib.suppress(Exception):
            clickhouse.down(self.settings)
        with contextlib.suppress(Exception):
            kafka.down(self.settings)

    def analytics(self, database: str = "chaos") -> Settings:
        """Settings pointing the sink at a database of the own server, created and migrated."""
        from clickhouse_driver import Client

        client = Client("127.0.0.1", port=self.settings.local_clickhouse_port)
        try:
            client.execute(f"CREATE DATABASE IF NOT EXISTS {database}")
        finally:
            client.disconnect()
        url = f"clickhouse://default:@127.0.0.1:{self.settings.local_clickhouse_port}/{database}"
        with opened(parse_clickhouse_url(url)) as engine:
            migrate(engine)
        return self.settings.model_copy(update={"clickhouse_url": url})


def _kill_group(pid: int | None) -> None:
    if pid is None:
        raise AssertionError("the process to kill is not running")
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            return
        if state == "Z":
            return
        time.sleep(0.1)
    raise AssertionError(f"process {pid} survived SIGKILL")


# -- publishing that survives a broker outage --------------------------------------------------


@dataclass
class Publishing:
    """Events published chunk by chunk from a thread; an unconfirmed chunk is published again.

    The Publisher raises :class:`producers.publisher.PublishFailed` when the broker did not
    confirm a send; the chunk is then sent again as a whole (the router de-duplicates by event
    id), so nothing is lost and the retries are counted.
    """

    settings: Settings
    events: Sequence[Event]
    chunk: int = 2_000
    rate: float = 0.0  # events per second, 0: as fast as the broker confirms
    sent: int = 0
    retries: int = 0
    failures: list[str] = field(default_factory=list)
    error: BaseException | None = None
    finished_at: float | None = None
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="publisher", daemon=True)
        self._thread.start()

    def join(self, timeout: float) -> None:
        assert self._thread is not None
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"publishing did not finish in {timeout:.0f} s ({self.sent} sent)")
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        from producers.publisher import Publisher

        started = time.monotonic()
        try:
            publisher = self._open(Publisher)
            for low in range(0, len(self.events), self.chunk):
                chunk = self.events[low : low + self.chunk]
                while True:
                    try:
                        publisher.publish_many(chunk, timeout=60)
                        break
                    except Exception as error:  # PublishFailed, or a broken producer
                        self.retries += 1
                        self.failures.append(f"{type(error).__name__}: {error}"[:300])
                        say(f"publish of events {low}..{low + len(chunk)} failed, again: {error}")
                        with contextlib.suppress(Exception):
                            publisher._producer.close(timeout=5)
                        time.sleep(2)
                        publisher = self._open(Publisher)
                self.sent = low + len(chunk)
                if self.rate > 0:
                    ahead = self.sent / self.rate - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)
            publisher.close()
        except BaseException as error:
            self.error = error
        finally:
            self.finished_at = time.monotonic()

    def _open(self, publisher: Callable[..., Any]) -> Any:
        while True:
            try:
                return publisher(self.settings)
            except Exception as error:  # no broker to bootstrap from yet
                self.failures.append(f"connect: {type(error).__name__}: {error}"[:300])
                time.sleep(1)


# -- reading back ------------------------------------------------------------------------------


def province_topics(settings: Settings) -> list[str]:
    return Topics(settings.topic_namespace).provinces()


def end_offsets(settings: Settings, topics: Sequence[str]) -> int | None:
    """How many messages ``topics`` hold together, or None when the broker does not answer."""
    try:
        return count_records(settings, topics, timeout_ms=5_000)
    except Exception:
        return None


def scalar(settings: Settings, sql: str) -> int:
    """One number from the analytics database (``{db}`` in ``sql`` names it)."""
    target = settings.clickhouse
    with opened(target) as engine:
        return int(engine.query(sql.format(db=target.database))[1][0][0])


def rows(settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    target = settings.clickhouse
    with opened(target) as engine:
        return [tuple(row) for row in engine.query(sql.format(db=target.database))[1]]


def wait_until(condition: Callable[[], Any], timeout: float, what: str, every: float = 0.5) -> Any:
    """Like the integration tier's ``wait_for``, with a service away counting as "not yet"."""
    return waiting.wait_until(
        condition, timeout, what, every, error=AssertionError, tolerate=(Exception,)
    )


@contextlib.contextmanager
def stopwatch(name: str, figures: dict[str, float]) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        figures[name] = round(time.monotonic() - started, 1)


def recent_traffic(seed: int, count: int, now: datetime) -> list[Event]:
    """``count`` simulated events ending about ``now``.

    Traffic from long ago would have every open SLA clock breached many times over at once;
    traffic that ends now keeps the SLA facts to what live traffic produces.
    """
    from producers.recent import start_ending_by
    from producers.simulator import simulate
    from samt124.domain.routing import referral_bodies as _router_bodies

    start = start_ending_by(now, seed, count)
    return list(simulate(seed, count, start, body_for=_router_bodies()))


def group_lag(settings: Settings, group: str, topics: Sequence[str]) -> int | None:
    """Messages of ``topics`` the consumer group has not committed yet (None: no answer)."""
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

    try:
        admin = KafkaAdminClient(**settings.kafka_client_options(), request_timeout_ms=5_000)
        consumer = KafkaConsumer(**settings.kafka_client_options(), request_timeout_ms=5_000)
    except Exception:
        return None
    try:
        committed = admin.list_group_offsets(group).get(group, {})
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        ends = consumer.end_offsets(partitions)
        lag: int = sum(
            end - (committed[tp].offset if tp in committed else 0) for tp, end in ends.items()
        )
    except Exception:
        return None
    else:
        return lag
    finally:
        admin.close()
        consumer.close()
