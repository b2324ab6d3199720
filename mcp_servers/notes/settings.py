"""Settings of the notes server, read from ``NOTES_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from mcp_servers._common import ServiceSettings


class NotesSettings(ServiceSettings):
    """``NOTES_DB_PATH`` and friends; ``MCP_SERVICE_TOKEN`` guards the HTTP transport."""

    model_config = SettingsConfigDict(env_prefix="NOTES_", extra="ignore", populate_by_name=True)

    db_path: Path = Field(default=Path("data/notes.db"), description="SQLite file; its folder is created on start.")
    max_notes_per_user: int = Field(default=10_000, gt=0)
