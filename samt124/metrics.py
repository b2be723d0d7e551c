"""Serving a stage's Prometheus metrics: where (``--metrics HOST:PORT``, ``SAMT124_METRICS_*``)
and how (``/metrics`` from a background thread, as ``samt124 lag --serve`` does).

Names follow Prometheus' conventions: ``samt124_<stage>_<what>``, counters end in ``_total``,
durations are ``_seconds``, instants ``_timestamp_seconds``.
"""

from __future__ import annotations

import argparse
import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server

from samt124 import arguments
from samt124.errors import CommandFailed
from samt124.settings import Settings


def address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``0.0.0.0:9464``, ``[::1]:9464``, ``:9464`` for every interface)."""
    host, separator, port = text.rpartition(":")
    if not separator or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "0.0.0.0", arguments.port(port)


def where(given: tuple[str, int] | None, settings: Settings) -> tuple[str, int] | None:
    """The flag's address, else the settings' (``None``: no metrics endpoint)."""
    if given is not None:
        return given
    if settings.metrics_port is None:
        return None
    return settings.metrics_host, settings.metrics_port


def serve(
    at: tuple[str, int], registry: CollectorRegistry, stage: str
) -> tuple[WSGIServer, threading.Thread]:
    """Serve ``registry`` on ``http://HOST:PORT/metrics``; a port in use is a runtime failure."""
    host, port = at
    try:
        return start_http_server(port, addr=host, registry=registry)
    except OSError as error:
        raise CommandFailed(
            f"cannot serve the {stage}'s metrics on {host}:{port}: {error.strerror or error}",
            "choose another --metrics HOST:PORT (SAMT124_METRICS_HOST, SAMT124_METRICS_PORT)",
        ) from error
