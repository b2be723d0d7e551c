"""The chaos tier reuses the integration tier's fixtures (shared services, per-test namespace,
its topics deleted after the test)."""

from tests.integration.conftest import _drop_new_topics, services, settings, worker

__all__ = ["_drop_new_topics", "services", "settings", "worker"]
