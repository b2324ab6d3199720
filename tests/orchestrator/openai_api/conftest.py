"""A secured orchestrator (JWT sign-ins, SQLite) with the test MCP server, and API keys made through its API."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import httpx
import openai
import pytest

from tests.orchestrator.api.conftest import JWT_SECRET, SettingsFactory, bearer
from tests.support.service import Service, running_service

ALICE = bearer("alice", name="Alice")
BOB = bearer("bob", name="Bob")


@pytest.fixture
async def secured(make_settings: SettingsFactory) -> AsyncGenerator[Service]:
    settings = make_settings(jwt_secret_key=JWT_SECRET, daily_token_quota_overrides={"carol": 1})
    async with running_service(settings) as running:
        yield running


async def new_key(client: httpx.AsyncClient, headers: dict[str, str], name: str = "laptop") -> str:
    response = await client.post("/api/api-keys", json={"name": name}, headers=headers)
    assert response.status_code == 201, response.text
    key: str = response.json()["key"]
    return key


def openai_client(service: Service, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key=key, base_url=f"{service.url}/v1", max_retries=0, timeout=30)
