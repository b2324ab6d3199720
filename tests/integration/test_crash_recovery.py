"""Killing the service mid-turn leaves a consistent conversation that can continue (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import httpx

from tests.fakes.openai_server import FakeOpenAI, FakeOpenAIServer, text, tool_calls
from tests.orchestrator.api.conftest import stdio_test_server
from tests.support.process import orchestrator_process
from tests.support.turns import json_turn, new_conversation, open_stream, stored_messages


async def test_a_conversation_survives_the_service_being_killed_mid_tool_call(
    tmp_path: Path, database_url: str, openai_server: FakeOpenAIServer, fake_openai: FakeOpenAI
) -> None:
    servers = tmp_path / "servers.json"
    servers.write_text(json.dumps({"mcpServers": {"test": stdio_test_server()}}))
    env = {
        "OPENAI_API_KEY": openai_server.api_key,
        "OPENAI_BASE_URL": openai_server.base_url,
        "OPENAI_MODEL": "fake-gpt",
        "DATABASE_URL": database_url,
        "DATA_DIR": str(tmp_path / "data"),
        "MCP_CONFIG": str(servers),
        "MCP_BUILTIN_SERVERS": "false",
        "LOG_LEVEL": "WARNING",
    }
    fake_openai.script(tool_calls([("test__hang", {})]))

    async with (
        orchestrator_process(env, tmp_path) as (process, url),
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        conversation = await new_conversation(client)
        async with open_stream(client, conversation, "start something long") as events:
            async for event in events:
                if event.event == "tool_call_started":
                    os.kill(process.pid, signal.SIGKILL)
                    process.wait()
                    break

    fake_openai.script(text("I am back; the earlier call was interrupted."))
    async with orchestrator_process(env, tmp_path) as (_, url), httpx.AsyncClient(base_url=url, timeout=30) as client:
        before = await stored_messages(client, conversation)
        reply = await json_turn(client, conversation, "are you still there?")
        after = await stored_messages(client, conversation)

    assert [(m["role"], m["content"]) for m in before[:1]] == [("user", "start something long")]
    assert [m["role"] for m in before] == ["user", "assistant"]
    assert before[1]["tool_calls"][0]["name"] == "test__hang"
    assert reply["status"] == "complete"
    # The model was given a result for the interrupted call, so the history it saw was valid.
    sent = fake_openai.requests[-1]["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool", "user"]
    assert [m["role"] for m in after] == ["user", "assistant", "user", "assistant"]
