"""What a server asks during a call reaches the call's own asker, pauses the call's timeout, and is never shown to
another user; links to open must be https (or http on this machine)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from mcp.client.client import ConnectMode
from mcp_types import CreateMessageRequestParams, CreateMessageResult, ElicitRequestParams, ElicitResult, ErrorData

from orchestrator.errors import ToolCallFailed
from orchestrator.mcp.connection import ServerConnection
from orchestrator.mcp.links import safe_link
from orchestrator.mcp.types import ServerConfig
from tests.orchestrator.api.conftest import REPO_ROOT


class Recorder:
    """Answers like a user who accepts after ``delay`` seconds, and remembers what was asked."""

    def __init__(self, delay: float = 0.0) -> None:
        self.asked: list[ElicitRequestParams] = []
        self.delay = delay

    async def elicit(self, server_id: str, params: ElicitRequestParams) -> ElicitResult:
        self.asked.append(params)
        await anyio.sleep(self.delay)
        return ElicitResult(action="accept", content={"name": "Ada", "age": 36})

    async def sample(self, server_id: str, params: CreateMessageRequestParams) -> CreateMessageResult | ErrorData:
        return ErrorData(code=-1, message="no")

    async def authorize(self, server_id: str, url: str, signed_in: Callable[[], Awaitable[None]]) -> bool:
        return False


def catalog_config(**overrides: Any) -> ServerConfig:
    values: dict[str, Any] = {
        "id": "catalog",
        "transport": "stdio",
        "command": sys.executable,
        "args": ("-m", "tests.fakes.mcp_catalog_server"),
        "cwd": str(REPO_ROOT),
        **overrides,
    }
    return ServerConfig(**values)


@asynccontextmanager
async def connected(mode: ConnectMode, **overrides: Any) -> AsyncGenerator[ServerConnection]:
    """The catalog server over stdio: ``auto`` speaks 2026-07-28, ``legacy`` the revisions before it."""
    connection = ServerConnection(catalog_config(**overrides), protocol_mode=mode)
    async with anyio.create_task_group() as group:
        group.start_soon(connection.run)
        with anyio.fail_after(30):
            await connection.wait_settled()
        assert connection.status == "healthy", connection.last_error
        try:
            yield connection
        finally:
            connection.stop()


MODES = pytest.mark.parametrize("mode", ["auto", "legacy"])


@MODES
async def test_a_question_goes_to_the_call_that_caused_it_and_pauses_its_timeout(mode: ConnectMode) -> None:
    asker = Recorder(delay=1.0)  # longer than the 0.5 s tool timeout

    async with connected(mode, tool_timeout_seconds=0.5) as catalog:
        result = await catalog.call_tool("ask_name", {}, user_id="ada", requests=asker)

    assert [params.message for params in asker.asked] == ["Who are you?"]
    assert result.structured_content == {"result": "hello Ada, 36"}


@MODES
async def test_a_call_without_an_asker_gets_a_refusal_not_a_hang(mode: ConnectMode) -> None:
    async with connected(mode) as catalog:
        with pytest.raises(ToolCallFailed):
            await catalog.call_tool("ask_name", {}, user_id="ada")


@MODES
async def test_questions_are_refused_while_two_users_calls_share_the_connection(mode: ConnectMode) -> None:
    first, second = Recorder(delay=0.3), Recorder(delay=0.3)

    async def call(catalog: ServerConnection, user: str, asker: Recorder) -> None:
        with contextlib.suppress(ToolCallFailed):
            await catalog.call_tool("ask_name", {}, user_id=user, requests=asker)

    async with connected(mode) as catalog, anyio.create_task_group() as group:
        group.start_soon(call, catalog, "ada", first)
        group.start_soon(call, catalog, "bob", second)

    # Whoever asked while both calls ran was refused; no question reached the other user's asker.
    assert len(first.asked) + len(second.asked) <= 1


async def test_a_url_question_reaches_the_asker_on_servers_that_send_it_mid_call() -> None:
    asker = Recorder()

    async with connected("legacy") as catalog:
        result = await catalog.call_tool(
            "open_link", {"url": "https://auth.example/login"}, user_id="ada", requests=asker
        )

    [asked] = asker.asked
    assert asked.mode == "url"
    assert result.structured_content == {"result": "link: accept"}


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://auth.example/login", True),
        ("http://127.0.0.1:8080/callback", True),
        ("http://localhost/cb", True),
        ("http://[::1]:9/x", True),
        ("http://auth.example/login", False),
        ("javascript:alert(1)", False),
        ("file:///etc/passwd", False),
        ("https:///no-host", False),
    ],
)
def test_only_https_or_loopback_links_may_be_shown(url: str, allowed: bool) -> None:
    assert safe_link(url) is allowed
