"""The service fixtures of api/, for the tests of the orchestrator's other parts that run it whole."""

from tests.orchestrator.api.conftest import make_settings, service

__all__ = ["make_settings", "service"]
