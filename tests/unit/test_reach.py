"""The probe before a client is built: parsing the bootstrap list, and giving up in time."""

from __future__ import annotations

import socket
import time

import pytest

from samt124 import reach
from samt124.errors import CommandFailed
from samt124.settings import Settings


def test_bootstrap_addresses_are_parsed_as_kafka_clients_read_them() -> None:
    assert reach.bootstrap_addresses("a:1, b:2") == [("a", 1), ("b", 2)]
    assert reach.bootstrap_addresses("PLAINTEXT://kafka:9093") == [("kafka", 9093)]
    assert reach.bootstrap_addresses("[::1]:9094,broker") == [("::1", 9094), ("broker", 9092)]


def test_a_listening_port_is_reachable_and_a_closed_one_is_refused() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        assert reach.unreachable([("127.0.0.1", 1), ("127.0.0.1", port)], 2.0) is None
    assert reach.unreachable([("127.0.0.1", port)], 2.0) == "connection refused"


def test_an_address_that_never_answers_is_given_up_within_the_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def hangs(address: object, timeout: float) -> socket.socket:
        time.sleep(30)  # a host name that takes long to resolve ignores the socket's timeout
        raise TimeoutError

    monkeypatch.setattr(socket, "create_connection", hangs)
    started = time.monotonic()
    reason = reach.unreachable([("somewhere", 9092)], 0.5)
    assert time.monotonic() - started < 1.5
    assert reason == "no answer within 0.5 s"


def test_the_failure_names_the_address_and_the_setting_to_change() -> None:
    local = Settings(local_kafka_port=1, connect_timeout=1)
    with pytest.raises(CommandFailed) as failed:
        reach.kafka(local)
    assert failed.value.cause == "cannot reach Kafka at 127.0.0.1:1: connection refused"
    assert "samt124 local up kafka" in failed.value.remedy
    server = Settings(clickhouse_url="clickhouse://default:@127.0.0.1:2/x", connect_timeout=1)
    with pytest.raises(CommandFailed) as failed:
        reach.clickhouse(server)
    assert failed.value.cause.startswith("cannot reach ClickHouse at 127.0.0.1:2")
    assert "SAMT124_CLICKHOUSE_URL" in failed.value.remedy
    reach.clickhouse(Settings())  # the embedded engine needs no server
