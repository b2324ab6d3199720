"""Turns a dead replica left running: taken over, resumed from the stored steps, or ended cleanly as failed."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import anyio
import pytest

from orchestrator.loop.resume import INTERRUPTED_BY_RESTART
from orchestrator.memory.db import open_database
from orchestrator.memory.store import SqlStore
from orchestrator.memory.types import NewMessage, NewTurn, ToolCallRecord
from tests.fakes.openai_script import validate_chat_request
from tests.fakes.openai_server import FakeOpenAI, text, tool_calls
from tests.orchestrator.api.conftest import SettingsFactory
from tests.support.service import Service, running_service
from tests.support.sse import Event, read_events
from tests.support.turns import open_stream, stored_messages

# Beats far apart, so only the test decides when stale turns are looked for.
HEARTBEAT_SECONDS = 100.0
LOOKUP = ToolCallRecord("call_lookup", "test__lookup", '{"key": "fast"}')
SEND = ToolCallRecord("call_send", "test__send", '{"text": "sent once"}')


async def left_behind(service: Service, steps: Sequence[NewMessage]) -> tuple[str, str]:
    """A conversation whose turn a replica that died an hour ago left running after ``steps``: (conversation, turn)."""
    database = open_database(service.state.settings.resolved_database_url)
    try:
        store = SqlStore(database, clock=lambda: datetime.now(UTC) - timedelta(hours=1))
        conversation = await store.create_conversation("local")
        turn_id = str(uuid4())
        await store.start_turn(
            "local",
            conversation.id,
            NewMessage(role="user", content="look it up and echo it"),
            title=None,
            turn=NewTurn(turn_id, "a-dead-replica"),
        )
        if steps:
            await store.append_messages("local", conversation.id, steps)
    finally:
        await database.dispose()
    return conversation.id, turn_id


async def follow(service: Service, conversation: str, turn_id: str) -> list[Event]:
    """The turn's events from its start, once it has ended (none when it ended without any)."""
    url = f"/api/conversations/{conversation}/events"
    async with service.client.stream("GET", url, params={"after": f"{turn_id}.0.0"}) as response:
        assert response.status_code in {200, 204}, await response.aread()
        return [event async for event in read_events(response)]


async def detail(service: Service, conversation: str) -> dict[str, Any]:
    response = await service.client.get(f"/api/conversations/{conversation}")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
async def resuming(make_settings: SettingsFactory) -> AsyncGenerator[Service]:
    async with running_service(make_settings(turn_heartbeat_seconds=HEARTBEAT_SECONDS)) as running:
        yield running


async def test_a_turn_left_behind_is_resumed_rerunning_only_the_read_only_call(
    resuming: Service, fake_openai: FakeOpenAI
) -> None:
    steps = [NewMessage(role="assistant", content="Let me check.", tool_calls=[LOOKUP, SEND], model="fake-gpt")]
    conversation, turn_id = await left_behind(resuming, steps)
    assert (await detail(resuming, conversation))["running_turn"] is not None
    fake_openai.script(text("fast is 42; the message may not have gone out."))

    assert await resuming.state.supervisor.resume_stale() == 1
    events = await follow(resuming, conversation, turn_id)
    messages = await stored_messages(resuming.client, conversation)

    assert [(m["role"], m["tool_call_id"]) for m in messages] == [
        ("user", None),
        ("assistant", None),
        ("tool", "call_send"),  # not idempotent: never run twice
        ("tool", "call_lookup"),  # read-only: run again
        ("assistant", None),
    ]
    assert (messages[2]["content"], messages[2]["is_error"]) == (INTERRUPTED_BY_RESTART, True)
    assert (messages[3]["content"], messages[3]["is_error"]) == ("fast is 42", False)
    assert (messages[-1]["status"], messages[-1]["content"]) == (
        "complete",
        "fast is 42; the message may not have gone out.",
    )
    # The model saw a valid history: both calls answered.
    assert validate_chat_request(fake_openai.requests[-1]) is None
    assert [m["role"] for m in fake_openai.requests[-1]["messages"]] == ["system", "user", "assistant", "tool", "tool"]
    # Followers see the turn whole: what was stored before, then the rest.
    assert [e.event for e in events if e.event != "token"] == [
        "message_start",
        "tool_call_started",
        "tool_call_started",
        "tool_call_finished",
        "tool_call_finished",
        "message_end",
    ]
    assert str(events[0].id).endswith(".2.1")  # the turn's second run
    assert (await detail(resuming, conversation))["running_turn"] is None


@pytest.mark.parametrize(
    "overrides",
    [{"turn_resume_max_attempts": 1}, {"turn_resume": False}],
    ids=["out of attempts", "resume turned off"],
)
async def test_a_turn_that_cannot_be_resumed_ends_failed_keeping_the_users_message(
    make_settings: SettingsFactory, fake_openai: FakeOpenAI, overrides: dict[str, Any]
) -> None:
    settings = make_settings(turn_heartbeat_seconds=HEARTBEAT_SECONDS, **overrides)
    async with running_service(settings) as service:
        steps = [NewMessage(role="assistant", content="", tool_calls=[SEND], model="fake-gpt")]
        conversation, turn_id = await left_behind(service, steps)

        assert await service.state.supervisor.resume_stale() == 1
        events = await follow(service, conversation, turn_id)
        messages = await stored_messages(service.client, conversation)
        after = await detail(service, conversation)
        again = await service.client.get(f"/api/conversations/{conversation}/events")

    assert [e.event for e in events] == ["error", "message_end"]
    assert (events[0].data["code"], events[1].data["status"]) == ("turn_failed", "error")
    assert [(m["role"], m["status"]) for m in messages] == [
        ("user", "complete"),
        ("assistant", "complete"),
        ("assistant", "error"),
    ]
    assert messages[0]["content"] == "look it up and echo it"
    assert "could not be finished" in messages[-1]["error"]
    assert after["running_turn"] is None
    assert again.status_code == 204
    assert fake_openai.requests == []  # the model was not asked, the tool not called


async def test_a_turn_whose_reply_was_stored_before_the_crash_just_ends(
    resuming: Service, fake_openai: FakeOpenAI
) -> None:
    steps = [NewMessage(role="assistant", content="All done.", model="fake-gpt")]
    conversation, turn_id = await left_behind(resuming, steps)

    assert await resuming.state.supervisor.resume_stale() == 1
    events = await follow(resuming, conversation, turn_id)
    messages = await stored_messages(resuming.client, conversation)

    assert events == []
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert (await detail(resuming, conversation))["running_turn"] is None
    assert fake_openai.requests == []


async def test_a_turn_with_a_live_replica_is_not_taken_over(resuming: Service, fake_openai: FakeOpenAI) -> None:
    fake_openai.script(text("fresh"))
    response = await resuming.client.post("/api/conversations", json={})
    conversation = response.json()["id"]
    await resuming.client.post(f"/api/conversations/{conversation}/messages", json={"content": "hi"})

    assert await resuming.state.supervisor.resume_stale() == 0
    assert [m["role"] for m in await stored_messages(resuming.client, conversation)] == ["user", "assistant"]


async def test_a_replica_whose_turn_was_taken_over_stops_its_copy_and_stores_nothing_more(
    make_settings: SettingsFactory, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(tool_calls([("test__hang", {})]))
    async with running_service(make_settings(turn_heartbeat_seconds=0.2)) as service:
        conversation = (await service.client.post("/api/conversations", json={})).json()["id"]
        async with open_stream(service.client, conversation, "wait forever") as events:
            async for event in events:
                if event.event == "tool_call_progress":  # the call runs on the server
                    break
        handle = service.state.turns.get("local", conversation)
        assert handle is not None
        turn = await service.state.store.latest_turn("local", conversation)
        assert turn is not None

        # Another replica decides this one stalled and claims the turn.
        claimed = await service.state.store.claim_turn(turn.id, "another-replica", datetime.now(UTC) + timedelta(1))
        with anyio.fail_after(10):
            await handle.released.wait()
        after = await service.state.store.latest_turn("local", conversation)
        messages = await stored_messages(service.client, conversation)

    assert claimed is not None
    assert after is not None
    assert (after.owner, after.status) == ("another-replica", "running")
    # The step before the call stays; no "cancelled" result and no stopped reply compete with the other replica's.
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[1]["tool_calls"][0]["name"] == "test__hang"
