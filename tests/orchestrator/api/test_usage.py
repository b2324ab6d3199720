"""Token usage through the API: recorded per turn, reported by GET /api/usage, and daily quotas that end turns."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import pytest

from tests.fakes.openai_server import FakeOpenAI, text, tool_calls
from tests.orchestrator.api.conftest import JWT_SECRET, SettingsFactory, bearer
from tests.support.service import Service, running_service
from tests.support.turns import json_turn, names, new_conversation, stored_messages, stream_turn

ALICE = bearer("alice")  # an admin
BOB = bearer("bob")


@pytest.fixture
async def secured(make_settings: SettingsFactory, database_url: str) -> AsyncGenerator[Service]:
    settings = make_settings(
        jwt_secret_key=JWT_SECRET,
        database_url=database_url,
        admin_users=["alice"],
        daily_token_quota_overrides={"alice": 0},
    )
    async with running_service(settings) as running:
        yield running


async def test_every_model_call_of_a_turn_is_counted_for_the_user_conversation_and_model(
    secured: Service, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(tool_calls([("test__echo", {"text": "ping"})]), text("The tool said ping."))
    conversation = await new_conversation(secured.client, BOB)

    reply = await json_turn(secured.client, conversation, "Echo ping", BOB)

    usage = (await secured.client.get("/api/usage", headers=BOB)).json()
    assert usage["scope"] == "bob"
    assert usage["total"]["requests"] == 2
    assert usage["total"]["prompt_tokens"] == reply["prompt_tokens"]
    assert usage["total"]["completion_tokens"] == reply["completion_tokens"]
    assert [row["key"] for row in usage["by_model"]] == ["fake-gpt"]
    assert [row["key"] for row in usage["by_conversation"]] == [conversation]
    assert usage["quota"]["daily_limit"] is None
    assert usage["quota"]["used_today"] == reply["prompt_tokens"] + reply["completion_tokens"]


async def test_users_see_only_their_own_usage_and_admins_see_everyone(
    secured: Service, fake_openai: FakeOpenAI
) -> None:
    for headers in (ALICE, BOB):
        await json_turn(secured.client, await new_conversation(secured.client, headers), "hello", headers)

    mine = (await secured.client.get("/api/usage", headers=BOB)).json()
    refused = await secured.client.get("/api/usage", params={"all": "true"}, headers=BOB)
    refused_other = await secured.client.get("/api/usage", params={"user_id": "alice"}, headers=BOB)
    everyone = (await secured.client.get("/api/usage", params={"all": "true"}, headers=ALICE)).json()
    bobs = (await secured.client.get("/api/usage", params={"user_id": "bob"}, headers=ALICE)).json()

    assert mine["by_user"] == []
    assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
    assert refused_other.status_code == 403
    assert everyone["scope"] == "all"
    assert {row["key"] for row in everyone["by_user"]} == {"alice", "bob"}
    assert bobs["total"] == mine["total"]


async def test_a_user_over_the_daily_quota_gets_a_clear_end_and_the_message_is_kept(
    make_settings: SettingsFactory, fake_openai: FakeOpenAI
) -> None:
    settings = make_settings(jwt_secret_key=JWT_SECRET, daily_token_quota=1_000, admin_users=["alice"])
    async with running_service(settings) as service:
        fake_openai.script(text("x" * 8_000))  # about 2,000 completion tokens: past the quota in one reply
        conversation = await new_conversation(service.client, BOB)
        first = await json_turn(service.client, conversation, "write a lot", BOB)
        assert first["status"] == "complete"

        events = await stream_turn(service.client, conversation, "and more", BOB)
        reply = await json_turn(service.client, conversation, "still there?", BOB)
        usage = (await service.client.get("/api/usage", headers=BOB)).json()
        stored = await stored_messages(service.client, conversation, BOB)
        admins = await json_turn(service.client, await new_conversation(service.client, ALICE), "hi", ALICE)

    assert names(events) == ["message_start", "error", "message_end"]
    error = next(event.data for event in events if event.event == "error")
    assert error["code"] == "token_quota_exceeded"
    assert "1000" in error["message"]
    assert events[-1].data["status"] == "incomplete"
    assert (reply["status"], reply["error_code"]) == ("incomplete", "token_quota_exceeded")
    assert len(fake_openai.requests) == 2  # the refused turns never reached the model (alice's did)
    assert usage["quota"]["remaining_today"] == 0
    assert [m["content"] for m in stored if m["role"] == "user"] == ["write a lot", "and more", "still there?"]
    assert admins["status"] == "complete"  # the quota is per user


async def test_a_turn_that_reaches_the_quota_midway_stops_before_the_next_model_call(
    make_settings: SettingsFactory, fake_openai: FakeOpenAI
) -> None:
    settings = make_settings(daily_token_quota=50)
    async with running_service(settings) as service:
        fake_openai.script(tool_calls([("test__echo", {"text": "ping" * 100})]), text("never sent"))
        conversation = await new_conversation(service.client)

        reply = await json_turn(service.client, conversation, "echo a lot")
        messages = await stored_messages(service.client, conversation)

    assert (reply["status"], reply["error_code"]) == ("incomplete", "token_quota_exceeded")
    assert len(fake_openai.requests) == 1
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant"]
    assert messages[-1]["error"] is not None
