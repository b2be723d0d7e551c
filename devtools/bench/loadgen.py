"""A lean HTTP/1.1 load generator, run in processes of its own beside the server it loads.

Each process opens ``connections`` keep-alive connections (plain asyncio streams on uvloop, no
HTTP client library) and sends requests back to back on each for ``seconds``: one request in
flight per connection, latency from the first byte written to the last byte of the answer read.
With a ``rate``, the requests follow a fixed schedule instead (request ``n`` is due at
``n / rate`` s), sent by whichever connection is free, and a request's latency runs from its time
on the schedule: one that waited for a free connection counts the wait, so a server that falls
behind shows it in the latencies rather than in a lower offered load.
Every answer is checked: its status counted, and, when asked, its body kept (JSON-decoded after
the clock stops) so that the caller can check what was answered.

``python -m devtools.bench.loadgen SPEC.json OUT.json``; :func:`run` starts several such processes
on one plan and merges what they saw.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Plan:
    """What to send: ``paths`` taken in turn (request ``n`` gets ``paths[n % len(paths)]``)."""

    url: str  # http://HOST:PORT
    method: str
    paths: list[str]
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    connections: int = 32
    seconds: float = 15.0
    keep: bool = False  # keep the 2xx bodies, JSON-decoded
    rate: float | None = None  # requests/s offered on a fixed schedule, all processes together

    def spec(self, offset: int, connections: int) -> dict[str, Any]:
        return {
            "url": self.url,
            "method": self.method,
            "paths": self.paths[offset:] + self.paths[:offset],
            "headers": self.headers,
            "body": self.body.decode("latin-1"),
            "connections": connections,
            "seconds": self.seconds,
            "keep": self.keep,
            "rate": self.rate * connections / self.connections if self.rate else None,
        }


@dataclass
class Seen:
    """What the generator processes saw together."""

    seconds: float = 0.0  # the longest process's wall time under load
    latencies: list[float] = field(default_factory=list)  # ms
    statuses: Counter[int] = field(default_factory=Counter)
    bodies: list[Any] = field(default_factory=list)
    cpu_seconds: float = 0.0  # the generator processes' own CPU time (user + system)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def p(self, fraction: float) -> float | None:
        """The ``fraction`` percentile of the latencies (nearest rank), in ms."""
        from devtools.bench.harness import percentile

        return percentile(self.latencies, fraction) if self.latencies else None


def _request(method: str, host: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    raise RuntimeError(f"an answer without Content-Length: {head[:200]!r}")


async def _load(spec: dict[str, Any]) -> dict[str, Any]:
    where = urlsplit(spec["url"])
    host, port = where.hostname or "127.0.0.1", where.port or 80
    body = spec["body"].encode("latin-1")
    prepared = [
        _request(spec["method"], f"{host}:{port}", path, spec["headers"], body)
        for path in spec["paths"]
    ]
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    kept: list[bytes] = []
    keep = bool(spec["keep"])
    rate = spec.get("rate")
    sent = 0
    connections = [
        await asyncio.open_connection(host, port) for _ in range(int(spec["connections"]))
    ]
    clock = time.perf_counter
    start = clock()
    end = start + float(spec["seconds"])

    async def one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        while clock() < end:
            message = prepared[sent % len(prepared)]
            if rate:  # the request's time on the schedule: a late one counts its wait
                began = start + sent / rate
                sent += 1
                if began >= end:
                    break
                if began > clock():
                    await asyncio.sleep(began - clock())
            else:
                sent += 1
                began = clock()
            writer.write(message)
            head = await reader.readuntil(b"\r\n\r\n")
            content = await reader.readexactly(_content_length(head))
            latencies.append((clock() - began) * 1000)
            status = int(head[9:12])
            statuses[status] += 1
            if keep and 200 <= status < 300:
                kept.append(content)

    await asyncio.gather(*(one(r, w) for r, w in connections))
    seconds = clock() - start
    for _, writer in connections:
        writer.close()
    return {
        "seconds": seconds,
        "latencies": latencies,
        "statuses": {str(k): v for k, v in statuses.items()},
        "bodies": [json.loads(b) for b in kept],
        "cpu_seconds": time.process_time(),
    }


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text())
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency of the API
        pass
    out = asyncio.run(_load(spec))
    Path(argv[1]).write_text(json.dumps(out))
    return 0


def run(plan: Plan, processes: int, work: Path) -> Seen:
    """``plan`` from ``processes`` generator processes, its connections shared among them."""
    work.mkdir(parents=True, exist_ok=True)
    children = []
    share, extra = divmod(plan.connections, processes)
    for i in range(processes):
        connections = share + (1 if i < extra else 0)
        if connections == 0:
            continue
        spec_path, out_path = work / f"loadgen-{i}.spec.json", work / f"loadgen-{i}.out.json"
        out_path.unlink(missing_ok=True)
        spec_path.write_text(json.dumps(plan.spec(i * len(plan.paths) // processes, connections)))
        command = [sys.executable, "-m", "devtools.bench.loadgen", str(spec_path), str(out_path)]
        children.append((subprocess.Popen(command, cwd=REPO), out_path))
    seen = Seen()
    failed = []
    for child, out_path in children:
        if child.wait(timeout=plan.seconds + 300) != 0 or not out_path.exists():
            failed.append(child.returncode)
            continue
        part = json.loads(out_path.read_text())
        seen.seconds = max(seen.seconds, part["seconds"])
        seen.latencies += part["latencies"]
        seen.statuses.update({int(k): v for k, v in part["statuses"].items()})
        seen.bodies += part["bodies"]
        seen.cpu_seconds += part["cpu_seconds"]
    if failed:
        raise RuntimeError(f"load generator processes failed: exit codes {failed}")
    return seen


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
