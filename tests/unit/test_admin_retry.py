"""Admin calls ride out a broker that goes away mid-call (a restart in a cluster), and only that."""

from __future__ import annotations

import pytest
from kafka.errors import KafkaConnectionError, TopicAuthorizationFailedError

from samt124.kafka import admin


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("samt124.kafka.admin.time.sleep", lambda seconds: None)


def test_a_lost_connection_is_tried_again_until_it_works() -> None:
    calls: list[int] = []

    @admin._riding_out_restarts
    def describe() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise KafkaConnectionError("111 ECONNREFUSED")
        return "described"

    assert describe() == "described"
    assert len(calls) == 3


def test_the_last_attempt_s_error_is_raised() -> None:
    calls: list[int] = []

    @admin._riding_out_restarts
    def describe() -> None:
        calls.append(1)
        raise KafkaConnectionError("111 ECONNREFUSED")

    with pytest.raises(KafkaConnectionError):
        describe()
    assert len(calls) == admin.ATTEMPTS


def test_other_errors_are_not_tried_again() -> None:
    calls: list[int] = []

    @admin._riding_out_restarts
    def describe() -> None:
        calls.append(1)
        raise TopicAuthorizationFailedError("no")

    with pytest.raises(TopicAuthorizationFailedError):
        describe()
    assert len(calls) == 1
