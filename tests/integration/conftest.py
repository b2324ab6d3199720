from tests.orchestrator.api.conftest import database_url, make_settings

__all__ = ["database_url", "make_settings"]
