"""The API's Prometheus metrics (``samt124 api --metrics HOST:PORT``).

Requests answered by route (the path template, so ids do not become labels), method and status;
how long each took, from the first byte read to the answer; events published (confirmed by the
broker, or still on their way when the answer was given); and the follower's view: records read,
requests held, whether it has caught up.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from api.view import View

REQUEST_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED = "unmatched"  # a path no route serves: one label, whatever was asked


class ApiMetrics(Collector):
    """Counters and a histogram the handlers feed, and the view read at each scrape."""

    def __init__(self, view: View, follower_records: Callable[[], int]) -> None:
        self.view = view
        self.follower_records = follower_records
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "samt124_api_requests",
            "HTTP requests answered, by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "samt124_api_request_duration_seconds",
            "Time from a request's arrival to its answer, by route template and method",
            ["route", "method"],
            buckets=REQUEST_SECONDS,
            registry=self.registry,
        )
        self.published = Counter(
            "samt124_api_events_published",
            "Events the API published: confirmed (201/200) or still on their way (202)",
            ["outcome"],
            registry=self.registry,
        )
        self.registry.register(self)

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "samt124_api_follower_records",
            "Records the follower read from the worker's changelogs and the intake",
            value=self.follower_records(),
        )
        held, open_now = self.view.size()
        yield GaugeMetricFamily(
            "samt124_api_view_requests", "Requests whose state the API's view holds", value=held
        )
        yield GaugeMetricFamily(
            "samt124_api_view_open_requests", "Open requests in the view's queues", value=open_now
        )
        yield GaugeMetricFamily(
            "samt124_api_view_caught_up",
            "1 once the follower has read up to where the topics stood when it started",
            value=1.0 if self.view.caught_up.is_set() else 0.0,
        )

    def wrap(self, app: ASGIApp) -> ASGIApp:
        """``app`` with each HTTP request counted and timed (a plain ASGI middleware)."""

        async def measured(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            started = time.perf_counter()
            status = 500  # unless an answer starts: what the server sends for an escaped error

            async def sending(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                await send(message)

            try:
                await app(scope, receive, sending)
            finally:
                route, method = route_of(scope), str(scope.get("method", ""))
                self.requests.labels(route, method, str(status)).inc()
                self.duration.labels(route, method).observe(time.perf_counter() - started)

        return measured


def route_of(scope: Mapping[str, Any]) -> str:
    """The matched route's path template (``/open311/v2/requests/{request_id}.{fmt}``)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED
