"""Settings of the workspace server, read from ``WORKSPACE_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from mcp_servers._common import ServiceSettings


class WorkspaceSettings(ServiceSettings):
    """``WORKSPACE_ROOT`` and the per-user limits; ``MCP_SERVICE_TOKEN`` guards the HTTP transport."""

    model_config = SettingsConfigDict(env_prefix="WORKSPACE_", extra="ignore", populate_by_name=True)

    root: Path = Field(default=Path("data/workspace"), description="Holds one folder per user; created on demand.")
    max_file_bytes: int = Field(default=1_000_000, gt=0, description="Largest file that can be written or read.")
    max_entries_per_user: int = Field(default=1_000, gt=0, description="Files plus folders in one user's workspace.")
    max_bytes_per_user: int = Field(default=50_000_000, gt=0, description="Total size of one user's files.")
    search_timeout_seconds: float = Field(
        default=2.0, gt=0, le=60, description="Longest one regular-expression search may run before it is stopped."
    )
