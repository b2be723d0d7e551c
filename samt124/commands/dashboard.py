"""``samt124 dashboard``: the ministry's live dashboard over HTTP, read-only from ClickHouse."""

from __future__ import annotations

import argparse
import socket
from typing import Any

from samt124 import arguments, reach
from samt124.errors import CommandFailed
from samt124.settings import Settings

DEFAULT_LISTEN = ("127.0.0.1", 8125)
DEFAULT_REFRESH = 5.0


def listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``0.0.0.0:8125``, ``[::1]:8125``) -> (host, port)."""
    host, separator, port = text.rpartition(":")
    if not separator or not host:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), arguments.port(port)


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "dashboard",
        help="serve the ministry's live dashboard (read-only, from ClickHouse)",
        description="Serve the live dashboard: backlog, overdue requests, breaches, on-time"
        " rates, volume by channel, consumer lag and dead letters, refreshing by itself."
        " Persian by default, English with ?lang=en or the toggle.",
    )
    parser.add_argument(
        "--listen",
        type=listen,
        default=DEFAULT_LISTEN,
        metavar="HOST:PORT",
        help="where to serve the page (default 127.0.0.1:8125)",
    )
    parser.add_argument(
        "--refresh",
        type=arguments.seconds,
        default=DEFAULT_REFRESH,
        metavar="SECONDS",
        help="seconds between the end of one ClickHouse read and the start of the next; every"
        f" open page shares the latest (default {DEFAULT_REFRESH:g})",
    )
    parser.add_argument(
        "--no-kafka",
        action="store_true",
        help="read nothing from Kafka (no consumer lag; dead letters from ClickHouse only)",
    )
    parser.set_defaults(handler=run)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, or a runtime failure naming the address."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise CommandFailed(
            f"cannot serve on {host}:{port}: {error.strerror or error}",
            "choose another address with --listen HOST:PORT, or stop what uses this one",
        ) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def run(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from consumers.clickhouse.engine import EngineError
    from dashboard.app import create_app
    from dashboard.reading import Snapshots

    reach.clickhouse(settings)
    host, port = args.listen
    sock = bind(host, port)
    snapshots = Snapshots(settings, every=args.refresh, kafka=not args.no_kafka)
    try:
        snapshots.first()  # the schema is there and readable before the page is served
    except EngineError as error:
        sock.close()
        raise CommandFailed(
            f"ClickHouse ({settings.clickhouse.describe()}): {error}",
            "create the schema with `samt124 init` (once), then start the dashboard again",
        ) from error
    snapshots.start()
    app = create_app(snapshots, refresh_seconds=args.refresh)
    shown = f"[{host}]" if ":" in host else host
    print(
        f"dashboard: http://{shown}:{port}/ (refreshing every {args.refresh:g} s; Ctrl-C stops)",
        flush=True,
    )
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    try:
        server.run(sockets=[sock])
    finally:
        snapshots.close()
        sock.close()
    return 0
