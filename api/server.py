"""Serving the API: uvicorn, one process; the follower and the publisher live as long as it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from api.app import Services, create_app
from api.keys import KeyStore
from api.metrics import ApiMetrics
from api.view import Follower, View
from producers.publisher import AsyncPublisher
from samt124 import metrics
from samt124.settings import Settings
from streams.pipeline import Pipeline


def build(settings: Settings, *, measured: bool = False) -> tuple[Any, Services]:
    """The ASGI app on these settings (it connects to Kafka when it starts serving) and what its
    handlers use. ``measured``: requests, publications and the view are counted in
    ``services.metrics``."""
    view = View(Pipeline.load(settings))
    services = Services(
        KeyStore(settings.api_keys_path), view, None, max_body=settings.api_max_body
    )
    if measured:
        services.metrics = ApiMetrics(view, lambda: _follower_records(services))

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        follower = Follower(settings, view)
        # every event is validated before it is sent (api.app._check names the field)
        publisher = AsyncPublisher(settings, linger_ms=settings.api_linger_ms)
        await publisher.start()
        services.publisher = publisher
        services.follower_stats = follower.stats
        follower.start()
        try:
            yield
        finally:
            follower.stop()
            services.publisher = None
            await publisher.stop()

    app = create_app(services, lifespan=lifespan)
    return (app if services.metrics is None else services.metrics.wrap(app)), services


def _follower_records(services: Services) -> int:
    stats = services.follower_stats() if services.follower_stats is not None else {}
    return int(stats.get("records", 0))


def serve(
    settings: Settings, host: str, port: int, metrics_at: tuple[str, int] | None = None
) -> None:
    """Serve the API; with ``metrics_at``, its Prometheus metrics on ``http://HOST:PORT/metrics``."""
    import uvicorn

    app, services = build(settings, measured=metrics_at is not None)
    if metrics_at is not None and services.metrics is not None:
        metrics.serve(metrics_at, services.metrics.registry, "API")
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
        timeout_graceful_shutdown=10,
    )
