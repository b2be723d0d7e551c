"""The chaos tier reuses the integration tier's fixtures (shared services, per-test namespace)."""

from tests.integration.conftest import services, settings, worker

__all__ = ["services", "settings", "worker"]
