"""Serving the API: uvicorn, one process; the follower and the publisher live as long as it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from api.app import Services, create_app
from api.keys import KeyStore
from api.view import Follower, View
from producers.publisher import Publisher
from samt124.settings import Settings
from streams.pipeline import Pipeline


def build(settings: Settings) -> Any:
    """The ASGI app on these settings: it connects to Kafka when it starts serving."""
    view = View(Pipeline.load(settings))
    services = Services(
        KeyStore(settings.api_keys_path), view, None, max_body=settings.api_max_body
    )

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        follower = Follower(settings, view)
        # every event is validated before it is sent (api.app._check names the field)
        publisher = Publisher(settings, check=False)
        services.publisher = publisher
        services.follower_stats = follower.stats
        follower.start()
        try:
            yield
        finally:
            follower.stop()
            services.publisher = None
            publisher.close()

    return create_app(services, lifespan=lifespan)


def serve(settings: Settings, host: str, port: int) -> None:
    import uvicorn

    uvicorn.run(
        build(settings),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
        timeout_graceful_shutdown=10,
    )
