"""One secured orchestrator per module (JWT sign-ins, SQLite, the test MCP server); each test its own users."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from orchestrator.settings import Settings, load_settings
from tests.fakes.openai_server import FakeOpenAIServer
from tests.orchestrator.api.conftest import JWT_SECRET, bearer, stdio_test_server
from tests.support.service import Service, running_service

QUOTA_USER = "carol"
"""The one user with a daily token quota (1 token): a completion spends it."""


def endpoint_settings(directory: Path, openai_server: FakeOpenAIServer, servers: dict[str, Any]) -> Settings:
    config = directory / "servers.json"
    config.write_text(json.dumps({"mcpServers": servers}))
    return load_settings(
        data_dir=directory / "data",
        openai_api_key=openai_server.api_key,
        openai_base_url=openai_server.base_url,
        openai_model="fake-gpt",
        openai_max_retries=0,
        mcp_config=config,
        mcp_builtin_servers=False,
        mcp_tool_timeout_seconds=10,
        jwt_secret_key=JWT_SECRET,
        daily_token_quota_overrides={QUOTA_USER: 1},
        _env_file=None,
    )


@pytest.fixture(scope="module")
async def secured(tmp_path_factory: pytest.TempPathFactory, openai_server: FakeOpenAIServer) -> AsyncGenerator[Service]:
    settings = endpoint_settings(tmp_path_factory.mktemp("v1"), openai_server, {"test": stdio_test_server()})
    async with running_service(settings) as running:
        yield running


@dataclass(frozen=True)
class KeyOwner:
    """A user of this test only: their sign-in headers and one API key."""

    id: str
    headers: dict[str, str]
    key: str


async def new_key(client: httpx.AsyncClient, headers: dict[str, str], name: str = "laptop") -> str:
    response = await client.post("/api/api-keys", json={"name": name}, headers=headers)
    assert response.status_code == 201, response.text
    key: str = response.json()["key"]
    return key


async def key_owner(client: httpx.AsyncClient, user_id: str | None = None) -> KeyOwner:
    user_id = user_id or f"user-{uuid.uuid4().hex[:8]}"
    headers = bearer(user_id, name=user_id.title())
    return KeyOwner(user_id, headers, await new_key(client, headers))


@pytest.fixture
async def owner(secured: Service) -> KeyOwner:
    return await key_owner(secured.client)


def openai_client(service: Service, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key=key, base_url=f"{service.url}/v1", max_retries=0, timeout=30)
