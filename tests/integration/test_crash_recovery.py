"""Killing or stopping the service mid-turn: after a restart the turn finishes by itself, with its history intact
and no tool call run twice that should not be (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import anyio
import httpx

from orchestrator.loop.resume import INTERRUPTED_BY_RESTART
from tests.fakes.openai_script import validate_chat_request
from tests.fakes.openai_server import FakeOpenAI, FakeOpenAIServer, hang, text, tool_calls
from tests.orchestrator.api.conftest import stdio_test_server
from tests.support.process import orchestrator_process
from tests.support.sse import Event, read_events
from tests.support.turns import new_conversation, open_stream, stored_messages

WAIT_SECONDS = 30.0


def service_env(tmp_path: Path, database_url: str, openai_server: FakeOpenAIServer) -> dict[str, str]:
    servers = tmp_path / "servers.json"
    server = stdio_test_server()
    server["args"] += ["--calls-file", str(tmp_path / "calls.txt")]
    server["toolPolicy"] = {"default": "run"}  # these tests are about crashes, not approvals
    servers.write_text(json.dumps({"mcpServers": {"test": server}}))
    return {
        "OPENAI_API_KEY": openai_server.api_key,
        "OPENAI_BASE_URL": openai_server.base_url,
        "OPENAI_MODEL": "fake-gpt",
        "DATABASE_URL": database_url,
        "DATA_DIR": str(tmp_path / "data"),
        "MCP_CONFIG": str(servers),
        "MCP_BUILTIN_SERVERS": "false",
        "LOG_LEVEL": "WARNING",
        # A dead replica's turn is stale after three missed beats: 0.6 s here, so the restart finds it stale.
        "TURN_HEARTBEAT_SECONDS": "0.2",
    }


async def wait_for_calls(calls_file: Path, count: int) -> None:
    """Wait until the test server has recorded ``count`` calls (it writes the file; nothing to await but that)."""
    path = anyio.Path(calls_file)
    with anyio.fail_after(WAIT_SECONDS):
        while True:
            if await path.exists() and len((await path.read_text()).splitlines()) >= count:
                return
            await anyio.sleep(0.02)


async def follow_to_the_end(client: httpx.AsyncClient, conversation: str, turn_id: str) -> list[Event]:
    """The turn's events from the start of its current run, until it ends (it may have ended already)."""
    url = f"/api/conversations/{conversation}/events"
    with anyio.fail_after(WAIT_SECONDS):
        async with client.stream("GET", url, params={"after": f"{turn_id}.0.0"}) as response:
            assert response.status_code == 200, await response.aread()
            return [event async for event in read_events(response)]


async def test_a_turn_killed_mid_tool_calls_resumes_after_a_restart_without_repeating_unsafe_calls(
    tmp_path: Path, database_url: str, openai_server: FakeOpenAIServer, fake_openai: FakeOpenAI
) -> None:
    env = service_env(tmp_path, database_url, openai_server)
    fake_openai.script(
        tool_calls([("test__lookup", {"key": "fast"})]),
        tool_calls([("test__lookup", {"key": "slow"}), ("test__send", {"text": "hello"})]),
    )

    async with (
        orchestrator_process(env, tmp_path) as (process, url),
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        conversation = await new_conversation(client)
        started: set[str] = set()
        turn_id = ""
        async with open_stream(client, conversation, "look things up and send hello") as events:
            async for event in events:
                turn_id = str(event.id).split(".")[0]
                if event.event == "tool_call_started":
                    started.add(event.data["arguments"])
                if len(started) == 3:
                    break
            # A step with an unsafe call runs its calls one at a time: the hanging lookup holds back the send.
            await wait_for_calls(tmp_path / "calls.txt", 2)
            os.kill(process.pid, signal.SIGKILL)
            process.wait()

    fake_openai.script(text("Found 42, and the message may not have gone out."))
    async with orchestrator_process(env, tmp_path) as (_, url), httpx.AsyncClient(base_url=url, timeout=30) as client:
        events = await follow_to_the_end(client, conversation, turn_id)
        messages = await stored_messages(client, conversation)
        detail = (await client.get(f"/api/conversations/{conversation}")).json()

    calls = (tmp_path / "calls.txt").read_text().splitlines()
    # The completed lookup was not repeated, the interrupted read-only one ran again, the unsafe send never ran.
    assert sorted(calls) == ["lookup fast", "lookup slow", "lookup slow"]
    assert [(m["role"], m["tool_name"]) for m in messages] == [
        ("user", None),
        ("assistant", None),
        ("tool", "test__lookup"),
        ("assistant", None),
        ("tool", "test__send"),  # stored when the turn was taken over
        ("tool", "test__lookup"),  # the call run again
        ("assistant", None),
    ]
    results = {m["tool_call_id"]: m for m in messages if m["role"] == "tool"}
    lookup, send = messages[3]["tool_calls"]
    assert (results[lookup["id"]]["content"], results[lookup["id"]]["is_error"]) == ("slow is 42", False)
    assert (results[send["id"]]["content"], results[send["id"]]["is_error"]) == (INTERRUPTED_BY_RESTART, True)
    assert (messages[-1]["status"], messages[-1]["content"]) == (
        "complete",
        "Found 42, and the message may not have gone out.",
    )
    assert detail["running_turn"] is None
    # Whoever follows the resumed turn sees it whole: the stored steps again, then the rest, then its end.
    assert events[0].event == "message_start"
    assert [e.data["status"] for e in events if e.event == "message_end"] == ["complete"]
    assert {e.data["name"] for e in events if e.event == "tool_call_finished"} == {"test__lookup", "test__send"}
    assert len({e.id for e in events}) == len(events)
    assert validate_chat_request(fake_openai.requests[-1]) is None


async def test_a_reply_running_when_the_service_is_shut_down_is_finished_after_the_restart(
    tmp_path: Path, openai_server: FakeOpenAIServer, fake_openai: FakeOpenAI
) -> None:
    env = service_env(tmp_path, f"sqlite:///{tmp_path / 'assistant.db'}", openai_server)
    fake_openai.script(hang(60, text("Half of this arrives, then the service stops.", chunk_size=5), after_chunks=3))

    async with (
        orchestrator_process(env, tmp_path) as (_, url),
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        conversation = await new_conversation(client)
        turn_id = ""
        async with open_stream(client, conversation, "take your time") as events:
            async for event in events:
                turn_id = str(event.id).split(".")[0]
                if event.event == "token":
                    break
    # Leaving the block stops the service (SIGTERM) while the model is still holding the reply back.

    fake_openai.script(text("The whole answer, after the restart."))
    async with orchestrator_process(env, tmp_path) as (_, url), httpx.AsyncClient(base_url=url, timeout=30) as client:
        events = await follow_to_the_end(client, conversation, turn_id)
        messages = await stored_messages(client, conversation)

    assert [(m["role"], m["status"], m["content"]) for m in messages] == [
        ("user", "complete", "take your time"),
        ("assistant", "complete", "The whole answer, after the restart."),
    ]
    assert [e.data["status"] for e in events if e.event == "message_end"] == ["complete"]
