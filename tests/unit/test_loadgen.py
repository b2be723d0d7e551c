"""The benchmark's load generator: on a schedule, a late request counts the time it waited."""

from __future__ import annotations

import asyncio
from typing import Any

from devtools.bench import loadgen

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"


async def _run(spec: dict[str, Any], delay: float) -> dict[str, Any]:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            await asyncio.sleep(delay)
            writer.write(ANSWER)
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        return await loadgen._load({**spec, "url": f"http://127.0.0.1:{port}"})
    finally:
        server.close()


def _spec(rate: float | None, seconds: float) -> dict[str, Any]:
    return {
        "method": "GET",
        "paths": ["/"],
        "headers": {},
        "body": "",
        "connections": 1,
        "seconds": seconds,
        "keep": False,
        "rate": rate,
    }


def test_a_server_slower_than_the_schedule_shows_it_in_the_latencies() -> None:
    # one connection, answers after 20 ms: at most 50/s; 100/s offered falls further behind
    seen = asyncio.run(_run(_spec(100.0, 1.0), 0.02))
    latencies = sorted(seen["latencies"])
    assert 40 <= len(latencies) <= 60
    assert latencies[-1] > 300  # the last answered waited about half a second on the schedule


def test_a_server_faster_than_the_schedule_keeps_to_it() -> None:
    seen = asyncio.run(_run(_spec(20.0, 1.0), 0.005))
    latencies = seen["latencies"]
    assert len(latencies) == 20
    assert max(latencies) < 100
    assert seen["seconds"] >= 0.95


def test_without_a_schedule_requests_go_back_to_back() -> None:
    seen = asyncio.run(_run(_spec(None, 0.5), 0.02))
    assert 15 <= len(seen["latencies"]) <= 26
    assert max(seen["latencies"]) < 100
