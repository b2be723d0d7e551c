"""Fuzzing the intake: random bytes, truncations and bit-flips of valid events, wrong keys.

In process, :meth:`streams.pipeline.Pipeline.on_intake` must never raise: each message is either
a dead letter (its original bytes to the dead-letter topic, with the reason) or routed. On the
real broker, a running worker must dead-letter every fuzzed message that does not decode or
validate (one dead letter each, original key and bytes, a ``dlq-reason``), route the bit-flips
that still make a valid event, keep routing (a valid sentinel arrives) and never exit.
"""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from samt124.contract import wire
from samt124.domain.events import Event
from samt124.kafka.reader import read_topics
from samt124.kafka.topics import Topics
from samt124.settings import Settings
from streams.pipeline import Pipeline, Where
from tests.chaos.harness import group_lag, province_topics, wait_until
from tests.integration.pipeline import Process, submission

WHERE = Where("fuzz.intake", 0, 0)


def valid_events() -> list[Event]:
    """A few valid events of several kinds (submissions open a request; the rest need one)."""
    from producers.simulator import simulate

    simulated = list(simulate(3, 40, datetime(2025, 5, 25, 4, 0, tzinfo=UTC)))
    return [submission(province="IR-07"), submission(province="IR-30"), *simulated]


EVENTS = valid_events()
ENCODED = [wire.encode(e) for e in EVENTS]


@st.composite
def fuzzed(draw: st.DrawFn) -> tuple[bytes | None, bytes]:
    """A (key, value) the intake could receive from a broken or hostile upstream."""
    index = draw(st.integers(0, len(ENCODED) - 1))
    valid, key = ENCODED[index], wire.key(EVENTS[index])
    kind = draw(st.sampled_from(["random", "truncated", "flipped", "wrong key", "marker"]))
    if kind == "random":
        return draw(st.none() | st.binary(max_size=40)), draw(st.binary(max_size=300))
    if kind == "truncated":
        return key, valid[: draw(st.integers(0, len(valid) - 1))]
    if kind == "flipped":
        data = bytearray(valid)
        for bit in draw(st.lists(st.integers(0, len(data) * 8 - 1), min_size=1, max_size=4)):
            data[bit // 8] ^= 1 << (bit % 8)
        return key, bytes(data)
    if kind == "wrong key":
        wrong = draw(st.binary(min_size=1, max_size=40).filter(lambda k: k != key))
        return wrong, valid
    return key, wire.MARKER + draw(st.binary(max_size=200))  # right marker, garbage after


@settings(max_examples=400, deadline=None)
@given(fuzzed(), st.booleans())
def test_on_intake_never_raises_and_dead_letters_or_routes(
    message: tuple[bytes | None, bytes], opened: bool
) -> None:
    key, value = message
    pipeline = Pipeline.load(Settings(partitions=1))  # every request's home is WHERE's partition
    wall = datetime.now(UTC)
    state = None
    if opened:  # the request of a valid event may already be known
        opening = pipeline.on_intake(None, wire.key(EVENTS[2]), ENCODED[2], [], WHERE, wall).state
        state = opening
    step = pipeline.on_intake(state, key, value, [], WHERE, wall)
    if step.dead_letter is not None:
        assert step.dead_letter
        [out] = step.outgoing
        assert out.topic == pipeline.topics.dlq
        assert (out.key, out.value) == (key, value)
        assert dict(out.headers)["dlq-reason"] == step.dead_letter.encode()
        assert step.state is None
    else:
        event = wire.decode(value)  # routed: it decoded
        assert key is None or key == wire.key(event)
        assert step.state is not None or step.closure is not None
        if not step.duplicate:
            assert any(out.value == value for out in step.outgoing)


# -- against a running worker ------------------------------------------------------------------


def produce(
    settings: Settings, topic: str, messages: list[tuple[bytes | None, bytes]]
) -> list[tuple[int, int]]:
    """Send and confirm each message; its (partition, offset)."""
    from kafka import KafkaProducer

    producer = KafkaProducer(**settings.kafka_client_options(), acks="all", linger_ms=5)
    try:
        futures = [producer.send(topic, key=k, value=v) for k, v in messages]
        producer.flush()
        return [(m.partition, m.offset) for m in (f.get(timeout=30) for f in futures)]
    finally:
        producer.close()


@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(fuzzed(), min_size=20, max_size=60))
def test_worker_dead_letters_fuzzed_intake_and_keeps_routing(
    settings: Settings, worker: Process, messages: list[tuple[bytes | None, bytes]]
) -> None:
    topics = Topics(settings.topic_namespace)
    sentinel = submission(province="IR-07")
    where = produce(settings, topics.intake, messages)
    produce(settings, topics.intake, [(wire.key(sentinel), wire.encode(sentinel))])
    wait_until(
        lambda: any(
            r.value == wire.encode(sentinel)
            for r in read_topics(settings, [topics.province(sentinel.province)])
        ),
        120,
        "the sentinel on its province topic",
    )
    # the sentinel's partition is done; the others may still be handled: wait for all of them
    wait_until(
        lambda: group_lag(settings, f"{settings.topic_namespace}-worker", [topics.intake]) == 0,
        120,
        "the worker to acknowledge every intake message",
    )
    assert worker.popen.poll() is None, worker.output()[-3000:]

    dead = read_topics(settings, [topics.dlq])
    by_where: dict[tuple[int, int], list[object]] = {}
    for record in dead:
        if record.headers.get("dlq-topic") == topics.intake.encode():
            at = (int(record.headers["dlq-partition"]), int(record.headers["dlq-offset"]))
            by_where.setdefault(at, []).append(record)
    routed = [wire.decode(r.value) for r in read_topics(settings, province_topics(settings))]
    routed_ids = {e.event_id for e in routed}
    routed_requests = {e.request_id for e in routed if hasattr(e, "request_id")}
    for (key, value), at in zip(messages, where, strict=True):
        letters = by_where.get(at, [])
        if letters:
            assert len(letters) == 1, f"{len(letters)} dead letters for one message at {at}"
            [letter] = letters
            assert letter.value == value  # type: ignore[attr-defined]
            assert letter.key == key  # type: ignore[attr-defined]
            assert letter.headers["dlq-reason"]  # type: ignore[attr-defined]
        else:  # not dead: it must have decoded, validated and been routed (or absorbed twice)
            event = wire.decode(value)
            assert event.event_id in routed_ids or (
                getattr(event, "request_id", None) in routed_requests  # a duplicate, absorbed
            ), f"message at {at} neither dead-lettered nor routed"
