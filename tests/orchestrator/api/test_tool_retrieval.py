"""Tool retrieval in real turns: the test MCP server over stdio, the fake model over HTTP, the offline model."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import anyio
import pytest

from tests.fakes.openai_server import FakeOpenAI, text, tool_calls
from tests.orchestrator.api.conftest import SettingsFactory
from tests.support.service import Service, running_service
from tests.support.turns import json_turn, new_conversation


@pytest.fixture
async def retrieving(make_settings: SettingsFactory) -> AsyncGenerator[Service]:
    """The test server's dozen tools, of which a turn offers 2 (and search_tools)."""
    settings = make_settings(tool_retrieval_top_k=2, tool_retrieval_min_tools=4, memory_enabled=False)
    async with running_service(settings) as running:
        yield running


def offered(request: dict[str, Any]) -> list[str]:
    return [tool["function"]["name"] for tool in request.get("tools", [])]


async def test_a_turn_offers_a_few_tools_and_search_tools_finds_more(
    retrieving: Service, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(
        tool_calls([("search_tools", {"query": "add two numbers together", "limit": 1})]),
        tool_calls([("test__add", {"a": 2, "b": 3})]),
        text("5"),
    )
    conversation = await new_conversation(retrieving.client)

    reply = await json_turn(retrieving.client, conversation, "Please echo back the word ping to me")

    first, second, third = (offered(request) for request in fake_openai.requests)
    assert "test__echo" in first
    assert len(first) == 3
    assert first[-1] == "search_tools"
    assert "test__add" not in first
    assert "test__add" in second
    assert "test__add" in third
    assert [(call["name"], call["is_error"]) for call in reply["tool_calls"]] == [
        ("search_tools", False),
        ("test__add", False),
    ]
    assert "test__add" in reply["tool_calls"][0]["result"]
    assert reply["tool_calls"][1]["result"] == "5.0"


async def test_a_tool_announced_at_run_time_is_indexed_and_found(retrieving: Service, fake_openai: FakeOpenAI) -> None:
    conversation = await new_conversation(retrieving.client)
    fake_openai.script(
        tool_calls([("test__add_tool", {"tool_name": "forecast", "description": "Weather forecast for a city"})]),
        text("Added."),
    )
    await json_turn(retrieving.client, conversation, "Register the new tool for me please now")
    for _ in range(500):  # the server announces the change; the registry lists again (bounded: 10 s)
        if any(spec.name == "test__forecast" for spec in retrieving.state.registry.tools()):
            break
        await anyio.sleep(0.02)

    fake_openai.reset()
    fresh = await new_conversation(retrieving.client)
    await json_turn(retrieving.client, fresh, "Will it rain in Berlin tomorrow? What does the forecast say?")

    assert "test__forecast" in offered(fake_openai.requests[0])


async def test_with_few_tools_every_tool_is_offered(make_settings: SettingsFactory, fake_openai: FakeOpenAI) -> None:
    async with running_service(make_settings(memory_enabled=False)) as service:
        conversation = await new_conversation(service.client)
        await json_turn(service.client, conversation, "hello")
        tools = service.state.registry.tools()

    assert offered(fake_openai.requests[0]) == [spec.name for spec in tools]
