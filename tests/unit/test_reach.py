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


def _serve_once(answer: bytes | None) -> tuple[socket.socket, int]:
    """A server that reads the request and sends ``answer`` (None: says nothing)."""
    import threading

    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        connection, _ = server.accept()
        with connection:
            connection.recv(1024)
            if answer is not None:
                connection.sendall(answer)
            time.sleep(2)

    threading.Thread(target=serve, daemon=True).start()
    return server, server.getsockname()[1]


def test_a_port_that_does_not_speak_kafka_is_not_a_broker() -> None:
    for answer in (None, b"HTTP/1.1 400 Bad Request\r\n\r\n"):
        server, port = _serve_once(answer)
        with server:
            started = time.monotonic()
            assert reach.unreachable([("127.0.0.1", port)], 0.5, kafka=True) == reach.NOT_KAFKA
            assert time.monotonic() - started < 1.2


def test_a_broker_answers_with_the_correlation_id() -> None:
    import struct

    # the start of an ApiVersions response: its size, then the correlation id of the request
    server, port = _serve_once(struct.pack(">ii", 6, reach.CORRELATION) + b"\x00\x00\x00\x00")
    with server:
        assert reach.unreachable([("127.0.0.1", port)], 1.0, kafka=True) is None
