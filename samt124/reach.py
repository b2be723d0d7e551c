"""Is Kafka, is the ClickHouse server there? A TCP connect before any client is built.

A Kafka client that finds no broker retries for half a minute and fills the screen with
warnings; a command calls :func:`kafka` or :func:`clickhouse` first instead, and within
``SAMT124_CONNECT_TIMEOUT`` seconds either goes on or stops with :class:`CommandFailed`: where
it looked, why it found nothing, and how to start the local service or which setting to change.
The embedded ClickHouse engine (chdb, the default) needs no server and no probe.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Sequence

from samt124.errors import CommandFailed
from samt124.settings import Settings, address_text

Address = tuple[str, int]
KAFKA_PORT = 9092
# ApiVersions (key 18) v0, correlation id 124, client id "samt124-reach": every broker answers
# it, before any login, with the same correlation id (an unsupported version gets an error
# response, still with that id)
CORRELATION = 124
CLIENT_ID = b"samt124-reach"
API_VERSIONS = struct.pack(">hhih", 18, 0, CORRELATION, len(CLIENT_ID)) + CLIENT_ID
KAFKA_HELLO = struct.pack(">i", len(API_VERSIONS)) + API_VERSIONS
NOT_KAFKA = "something listens there, but it does not answer as a Kafka broker"


def bootstrap_addresses(bootstrap: str) -> list[Address]:
    """``host:port,[::1]:9092,PLAINTEXT://host`` -> ``[(host, port), ...]`` (port 9092 if none)."""
    found: list[Address] = []
    for item in bootstrap.split(","):
        text = item.strip().rpartition("://")[2]
        if not text:
            continue
        host, separator, port = text.rpartition(":")
        if not separator or not port.isdigit() or (host.count(":") and not host.endswith("]")):
            host, port = text, str(KAFKA_PORT)  # no port, or a bare IPv6 address
        found.append((host.strip("[]"), int(port)))
    return found


def _attempt(address: Address, timeout: float, *, kafka: bool = False) -> str | None:
    """None when ``address`` accepts a TCP connection (and, with ``kafka``, answers a Kafka
    ApiVersions request), else why not, in a few words."""
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection(address, timeout=timeout) as connection:
            return _kafka_answers(connection, deadline) if kafka else None
    except socket.gaierror:
        return f"the host name {address[0]} is not known"
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except ConnectionRefusedError:
        return "connection refused"
    except OSError as error:
        return (error.strerror or str(error)).lower()


def _kafka_answers(connection: socket.socket, deadline: float) -> str | None:
    """None when the peer answers ApiVersions as a Kafka broker does, by ``deadline``."""
    received = b""
    try:
        connection.settimeout(max(deadline - time.monotonic(), 0.01))
        connection.sendall(KAFKA_HELLO)
        while len(received) < 8:
            connection.settimeout(max(deadline - time.monotonic(), 0.01))
            chunk = connection.recv(8 - len(received))
            if not chunk:
                break
            received += chunk
    except TimeoutError:
        return NOT_KAFKA
    if len(received) < 8:
        return NOT_KAFKA
    size, correlation = struct.unpack(">ii", received)
    return None if correlation == CORRELATION and 0 < size < 1 << 20 else NOT_KAFKA


def unreachable(addresses: Sequence[Address], timeout: float, *, kafka: bool = False) -> str | None:
    """None when any of ``addresses`` answers within ``timeout`` seconds, else why none did.

    The attempts run side by side, each in a daemon thread, so that a host name that takes
    long to resolve cannot hold the command (or its exit) beyond the timeout. With ``kafka``,
    an address must also answer a Kafka request (only over plaintext: TLS needs the client)."""
    if not addresses:
        return "no address given"
    reasons: dict[Address, str | None] = {}
    answered = threading.Event()
    lock = threading.Lock()

    def attempt(address: Address) -> None:
        reason = _attempt(address, timeout, kafka=kafka)
        with lock:
            reasons[address] = reason
            if reason is None or len(reasons) == len(addresses):
                answered.set()

    for address in addresses:
        threading.Thread(target=attempt, args=(address,), daemon=True).start()
    answered.wait(timeout + 0.5)
    with lock:
        if any(reason is None for reason in reasons.values()):
            return None
        return next(
            (reason for reason in reasons.values() if reason),
            f"no answer within {timeout:g} s",
        )


def kafka(settings: Settings) -> None:
    """Go on when a bootstrap server answers; else :class:`CommandFailed` saying what to do."""
    plaintext = settings.kafka_security_protocol in ("PLAINTEXT", "SASL_PLAINTEXT")
    addresses = bootstrap_addresses(settings.bootstrap)
    reason = unreachable(addresses, settings.connect_timeout, kafka=plaintext)
    if reason is None:
        return
    cause = f"cannot reach Kafka at {settings.bootstrap}: {reason}"
    if settings.uses_local_kafka:
        remedy = (
            "start the local broker with `samt124 local up kafka`, or point"
            " SAMT124_KAFKA_BOOTSTRAP (--bootstrap) at a running one"
        )
    else:
        remedy = (
            "start the broker there, or point SAMT124_KAFKA_BOOTSTRAP (--bootstrap) at a running"
            " one; unset, it means the local broker that `samt124 local up kafka` starts"
        )
    raise CommandFailed(cause, remedy)


def clickhouse(settings: Settings) -> None:
    """Go on when the ClickHouse server answers (or the engine is the embedded one)."""
    target = settings.clickhouse
    if target.engine != "server":
        return
    reason = unreachable(target.addresses, settings.connect_timeout)
    if reason is None:
        return
    where = ", ".join(address_text(address) for address in target.addresses)
    raise CommandFailed(
        f"cannot reach ClickHouse at {where}: {reason}",
        "start the server (`samt124 local up clickhouse` runs one on this machine), point"
        " SAMT124_CLICKHOUSE_URL (--clickhouse-url) at a running one, or unset it to use the"
        " embedded engine",
    )
