"""Publishing events to ``samt124.intake``: the Python API for upstream systems.

Every event is validated, encoded in the Avro single-object format and sent with an idempotent
producer and ``acks=all``; every send is confirmed by the broker or raised — never dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from samt124.contract import wire
from samt124.domain.events import Event
from samt124.domain.validation import ValidationFailed, validate
from samt124.kafka.topics import Topics
from samt124.settings import Settings


class PublishFailed(RuntimeError):
    """The broker did not confirm some sends; ``failed`` names the events and the errors."""

    def __init__(self, failed: list[tuple[Event, BaseException]]) -> None:
        first = failed[0]
        super().__init__(
            f"{len(failed)} event(s) not confirmed by Kafka; first: "
            f"{first[0].event_id}: {type(first[1]).__name__}: {first[1]}"
        )
        self.failed = failed


@dataclass(frozen=True)
class Confirmed:
    topic: str
    partition: int
    offset: int


def producer_options(settings: Settings) -> dict[str, Any]:
    """kafka-python producer options: idempotent, acks=all, batched."""
    return {
        **settings.kafka_client_options(),
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 20,
        "batch_size": 512 * 1024,
        "max_in_flight_requests_per_connection": 5,
        "retries": 2_147_483_647,
        "delivery_timeout_ms": 120_000,
        "client_id": "samt124-publisher",
    }


def async_producer_options(settings: Settings) -> dict[str, Any]:
    """aiokafka producer options: the same guarantees as :func:`producer_options` (idempotent,
    ``acks=all``; a send is retried until it is two minutes old)."""
    from samt124.kafka.aio import client_options

    return {
        **client_options(settings),
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 20,
        "max_batch_size": 512 * 1024,
        "request_timeout_ms": 120_000,
        "client_id": "samt124-publisher",
    }


class Publisher:
    """``with Publisher(settings) as p: p.publish(event)`` — confirmed or raised."""

    def __init__(
        self,
        settings: Settings,
        *,
        topic: str | None = None,
        check: bool = True,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        linger_ms: int | None = None,
    ) -> None:
        """``linger_ms``: how long a send waits for others to share its produce request (the
        default suits bulk publishing; a caller waiting on each send wants it short)."""
        from kafka import KafkaProducer

        self.topic = topic or Topics(settings.topic_namespace).intake
        self._check = check
        self._now = now
        options = producer_options(settings)
        if linger_ms is not None:
            options["linger_ms"] = linger_ms
        self._producer = KafkaProducer(**options)

    def _payload(self, event: Event) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
        if self._check:
            errors = validate(event, now=self._now())
            if errors:
                raise ValidationFailed(errors)
        return wire.key(event), wire.encode(event), wire.headers(event)

    def send(self, event: Event) -> Any:
        """Validate and send one event without waiting: kafka-python's future of its
        confirmation (``add_callback``/``add_errback``, ``get``), for callers that wait their
        own way (the HTTP API awaits it on its event loop)."""
        key, value, headers = self._payload(event)
        return self._producer.send(self.topic, key=key, value=value, headers=headers)

    def publish(
        self,
        event: Event,
        timeout: float = 30.0,
        *,
        extra_headers: Sequence[tuple[str, bytes]] = (),
    ) -> Confirmed:
        """Send one event (with ``extra_headers`` after its own) and wait for the broker's
        confirmation."""
        key, value, headers = self._payload(event)
        headers = [*headers, *extra_headers]
        metadata = self._producer.send(self.topic, key=key, value=value, headers=headers).get(
            timeout=timeout
        )
        return Confirmed(metadata.topic, metadata.partition, metadata.offset)

    def publish_many(self, events: Iterable[Event], timeout: float = 120.0) -> int:
        """Send events in order (validating each first); return how many the broker confirmed.

        Raises :class:`PublishFailed` if any send was not confirmed, after all were tried.
        """
        futures = []
        for event in events:
            key, value, headers = self._payload(event)
            futures.append(
                (event, self._producer.send(self.topic, key=key, value=value, headers=headers))
            )
        self._producer.flush(timeout=timeout)
        failed: list[tuple[Event, BaseException]] = []
        for event, future in futures:
            if not future.is_done:
                failed.append((event, TimeoutError("not confirmed in time")))
            elif future.exception is not None:
                failed.append((event, future.exception))
        if failed:
            raise PublishFailed(failed)
        return len(futures)

    def close(self) -> None:
        self._producer.flush()
        self._producer.close()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class AsyncPublisher:
    """The :class:`Publisher` for an asyncio program (the HTTP API): the same topic, keys,
    encoding and producer guarantees, on aiokafka in the caller's event loop, so a send costs no
    thread hand-off. ``await start()`` first, ``await stop()`` last (it waits for what is on
    its way)."""

    def __init__(self, settings: Settings, *, linger_ms: int | None = None) -> None:
        """Events are not validated here: the caller validates them (the API names the field)."""
        from aiokafka import AIOKafkaProducer

        self.topic = Topics(settings.topic_namespace).intake
        options = async_producer_options(settings)
        if linger_ms is not None:
            options["linger_ms"] = linger_ms
        self._producer = AIOKafkaProducer(**options)

    async def start(self) -> None:
        await self._producer.start()

    async def send(self, event: Event) -> asyncio.Future[Any]:
        """Send one event without waiting for the broker: the future of its confirmation
        (aiokafka's ``RecordMetadata``: ``partition``, ``offset``), or of the error that ended
        its retries."""
        future: asyncio.Future[Any] = await self._producer.send(
            self.topic, key=wire.key(event), value=wire.encode(event), headers=wire.headers(event)
        )
        return future

    async def stop(self) -> None:
        await self._producer.stop()
