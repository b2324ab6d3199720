"""Real MCP servers through the whole stack: one from PyPI, our own first-party ones, and HTTP transports."""

from __future__ import annotations

import json
import sys

import pytest

from tests.fakes.mcp_http import HttpTransport, running_http_server
from tests.fakes.openai_server import FakeOpenAI, text, tool_calls
from tests.orchestrator.api.conftest import JWT_SECRET, SettingsFactory, bearer
from tests.support.service import running_service
from tests.support.turns import json_turn, new_conversation


async def test_mcp_server_time_from_pypi_plugs_in_from_the_servers_file_alone(
    make_settings: SettingsFactory, fake_openai: FakeOpenAI
) -> None:
    time_server = [sys.executable, "-m", "mcp_server_time", "--local-timezone", "UTC"]
    # Not a test of approvals: its calls run whatever its annotations say.
    servers = {"time": {"command": time_server[0], "args": time_server[1:], "toolPolicy": {"default": "run"}}}
    fake_openai.script(tool_calls([("time__get_current_time", {"timezone": "Europe/Lisbon"})]), text("It is late."))
    async with running_service(make_settings(servers=servers)) as service:
        reply = await json_turn(service.client, await new_conversation(service.client), "What time is it in Lisbon?")

    [call] = reply["tool_calls"]
    assert not call["is_error"]
    assert json.loads(call["result"])["timezone"] == "Europe/Lisbon"


async def test_first_party_notes_are_kept_per_user(make_settings: SettingsFactory, fake_openai: FakeOpenAI) -> None:
    alice, bob = bearer("alice"), bearer("bob")
    settings = make_settings(servers={}, mcp_builtin_servers=True, jwt_secret_key=JWT_SECRET)
    async with running_service(settings) as service:
        tools = {t["name"] for t in (await service.client.get("/api/tools", headers=alice)).json()}
        fake_openai.script(
            tool_calls([("notes__add_note", {"title": "groceries", "body": "milk, eggs"})]),
            text("Saved."),
            tool_calls([("notes__search_notes", {"query": "groceries"})]),
            text("Nothing for you."),
            tool_calls([("notes__search_notes", {"query": "groceries"})]),
            text("Found it."),
        )
        added = await json_turn(service.client, await new_conversation(service.client, alice), "note milk", alice)
        bobs = await json_turn(service.client, await new_conversation(service.client, bob), "my notes?", bob)
        alices = await json_turn(service.client, await new_conversation(service.client, alice), "my notes?", alice)

    assert {"notes__add_note", "workspace__write_file"} <= tools
    assert not added["tool_calls"][0]["is_error"]
    assert "groceries" not in bobs["tool_calls"][0]["result"]
    assert "groceries" in alices["tool_calls"][0]["result"]


@pytest.mark.parametrize("transport", ["streamable-http", "sse"])
async def test_http_servers_answer_tool_calls_over_both_transports(
    make_settings: SettingsFactory, fake_openai: FakeOpenAI, transport: HttpTransport
) -> None:
    async with running_http_server(transport, name="remote") as remote:
        servers = {"remote": {"url": remote.url, "type": "sse" if transport == "sse" else "http"}}
        fake_openai.script(tool_calls([("remote__echo", {"text": "over http"})]), text("Echoed."))
        async with running_service(make_settings(servers=servers)) as service:
            reply = await json_turn(service.client, await new_conversation(service.client), "echo over http")

    assert reply["tool_calls"][0]["result"] == "over http"
