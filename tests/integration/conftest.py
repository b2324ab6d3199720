from tests.orchestrator.api.conftest import database_url, databases, make_settings

__all__ = ["database_url", "databases", "make_settings"]
