"""The assistant's own MCP endpoint, through the SDK's streamable HTTP client: its tools, shared tools, API keys."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any

import pytest
from mcp import Client
from mcp_types import CallToolResult, TextContent

from tests.fakes.openai_server import FakeOpenAI, FakeOpenAIServer, text
from tests.mcp_servers.harness import connect_http
from tests.orchestrator.api.conftest import stdio_test_server
from tests.orchestrator.openai_api.conftest import KeyOwner, endpoint_settings, key_owner
from tests.support.service import Service, running_service

OWN_TOOLS = {"list_conversations", "search_conversations", "get_conversation", "ask"}


@pytest.fixture(scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory, openai_server: FakeOpenAIServer) -> AsyncGenerator[Service]:
    servers = {
        "shared": {**stdio_test_server("shared"), "share": True, "sendUserId": True},
        "private": stdio_test_server("private"),
    }
    async with running_service(endpoint_settings(tmp_path_factory.mktemp("mcp"), openai_server, servers)) as running:
        yield running


@pytest.fixture
async def alice(served: Service) -> KeyOwner:
    return await key_owner(served.client)


@pytest.fixture
async def bob(served: Service) -> KeyOwner:
    return await key_owner(served.client)


def result_text(result: CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, TextContent))


async def ok(client: Client, tool: str, arguments: dict[str, Any] | None = None) -> Any:
    result = await client.call_tool(tool, arguments or {})
    assert not result.is_error, result_text(result)
    return json.loads(result_text(result))


async def test_it_lists_its_own_tools_and_only_the_shared_servers_tools(served: Service, alice: KeyOwner) -> None:
    async with connect_http(f"{served.url}/mcp", alice.key) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}

    assert names >= OWN_TOOLS
    assert {"shared__echo", "shared__whoami"} <= names
    assert not any(name.startswith("private__") for name in names)


async def test_shared_tools_run_as_the_keys_user_and_unshared_ones_do_not_run(served: Service, alice: KeyOwner) -> None:
    async with connect_http(f"{served.url}/mcp", alice.key) as client:
        echoed = await client.call_tool("shared__echo", {"text": "hello"})
        whoami = await client.call_tool("shared__whoami", {})
        private = await client.call_tool("private__echo", {"text": "hello"})

    assert (result_text(echoed), echoed.is_error) == ("hello", False)
    assert result_text(whoami) == alice.id
    assert private.is_error


async def test_ask_runs_a_turn_that_its_user_can_list_read_and_search(
    served: Service, fake_openai: FakeOpenAI, alice: KeyOwner
) -> None:
    fake_openai.script(text("Paris is the capital of France."))
    async with connect_http(f"{served.url}/mcp", alice.key) as client:
        answer = await ok(client, "ask", {"message": "What is the capital of France?"})
        listed = await ok(client, "list_conversations")
        read = await ok(client, "get_conversation", {"conversation_id": answer["conversation_id"]})
        found = await ok(client, "search_conversations", {"query": "CAPITAL of france"})
        missing = await ok(client, "search_conversations", {"query": "Lisbon"})

    assert (answer["status"], answer["reply"]) == ("complete", "Paris is the capital of France.")
    assert [conversation["id"] for conversation in listed["conversations"]] == [answer["conversation_id"]]
    assert [(m["role"], m["content"]) for m in read["messages"]] == [
        ("user", "What is the capital of France?"),
        ("assistant", "Paris is the capital of France."),
    ]
    [hit] = found["conversations"]
    assert hit["id"] == answer["conversation_id"]
    assert "capital of France" in hit["snippet"]
    assert missing["conversations"] == []
    # The UI sees the same conversation.
    stored = await served.client.get(f"/api/conversations/{answer['conversation_id']}", headers=alice.headers)
    assert stored.status_code == 200


async def test_one_user_never_sees_anothers_conversations(
    served: Service, fake_openai: FakeOpenAI, alice: KeyOwner, bob: KeyOwner
) -> None:
    fake_openai.script(text("A secret reply."))
    async with connect_http(f"{served.url}/mcp", alice.key) as client:
        asked = await ok(client, "ask", {"message": "Keep this secret"})
    conversation_id = asked["conversation_id"]

    async with connect_http(f"{served.url}/mcp", bob.key) as client:
        listed = await ok(client, "list_conversations")
        found = await ok(client, "search_conversations", {"query": "secret"})
        read = await client.call_tool("get_conversation", {"conversation_id": conversation_id})
        continued = await client.call_tool("ask", {"message": "and now?", "conversation_id": conversation_id})

    assert listed["conversations"] == []
    assert found["conversations"] == []
    assert read.is_error
    assert continued.is_error
    assert "secret" not in result_text(read).lower()
    assert len(fake_openai.requests) == 1


async def test_requests_without_a_valid_key_get_401(served: Service, alice: KeyOwner) -> None:
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    headers = {"Accept": "application/json, text/event-stream"}
    [key] = (await served.client.get("/api/api-keys", headers=alice.headers)).json()
    await served.client.delete(f"/api/api-keys/{key['id']}", headers=alice.headers)

    for authorization in (None, "Bearer mcpa_unknown-key-0123456789", f"Bearer {alice.key}"):
        extra = {"Authorization": authorization} if authorization else {}
        response = await served.client.post("/mcp", json=initialize, headers={**headers, **extra})
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
