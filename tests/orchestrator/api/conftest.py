"""Fixtures that run the real orchestrator over HTTP: fake model, real MCP test server, SQLite or PostgreSQL."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any, Protocol

import jwt
import pytest

from orchestrator.settings import Settings, load_settings
from tests.fakes.openai_server import FakeOpenAIServer
from tests.orchestrator.memory.support import Databases
from tests.support.service import Service, running_service

REPO_ROOT = Path(__file__).resolve().parents[3]
JWT_SECRET = "test-secret-" + "x" * 40


def stdio_test_server(name: str = "test") -> dict[str, Any]:
    """A servers-file entry for the fault-injecting test MCP server over stdio."""
    return {
        "command": sys.executable,
        "args": ["-m", "tests.fakes.mcp_test_server", "--name", name, "--page-size", "0"],
        "cwd": str(REPO_ROOT),
    }


def bearer(user_id: str, *, name: str | None = None) -> dict[str, str]:
    claims: dict[str, Any] = {"sub": user_id, "exp": int(time.time()) + 3600}
    if name:
        claims["name"] = name
    return {"Authorization": "Bearer " + jwt.encode(claims, JWT_SECRET, algorithm="HS256")}


class SettingsFactory(Protocol):
    def __call__(self, servers: dict[str, Any] | None = ..., **overrides: Any) -> Settings: ...


@pytest.fixture
def make_settings(tmp_path: Path, openai_server: FakeOpenAIServer) -> SettingsFactory:
    """Settings for a service on the fake model, with the given servers file entries and no built-in servers."""

    def make(servers: dict[str, Any] | None = None, **overrides: Any) -> Settings:
        config = tmp_path / "servers.json"
        config.write_text(json.dumps({"mcpServers": servers if servers is not None else {"test": stdio_test_server()}}))
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "openai_api_key": openai_server.api_key,
            "openai_base_url": openai_server.base_url,
            "openai_model": "fake-gpt",
            "openai_max_retries": 2,
            "mcp_config": config,
            "mcp_builtin_servers": False,
            "mcp_tool_timeout_seconds": 10,
            "_env_file": None,
        }
        values.update(overrides)
        return load_settings(**values)

    return make


@pytest.fixture
async def service(make_settings: SettingsFactory) -> AsyncGenerator[Service]:
    """The orchestrator on SQLite with the test MCP server, in development mode (the local user)."""
    async with running_service(make_settings()) as running:
        yield running


@pytest.fixture
async def database_url(databases: Databases) -> str:
    """A new empty database on each backend (the service migrates it at start-up)."""
    return await databases.create()
