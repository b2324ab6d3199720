"""The official ``openai`` client against ``/v1``: replies with tools run on the server, streamed or not."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.fakes.openai_server import FakeOpenAI, text, tool_calls
from tests.fakes.openai_server import error as model_error
from tests.orchestrator.openai_api.conftest import QUOTA_USER, KeyOwner, key_owner, openai_client
from tests.support.service import Service


def tool_results(request: dict[str, Any]) -> list[str]:
    return [message["content"] for message in request["messages"] if message["role"] == "tool"]


async def test_a_completion_runs_the_tool_on_the_server_and_answers_with_the_final_reply(
    secured: Service, fake_openai: FakeOpenAI, owner: KeyOwner
) -> None:
    fake_openai.script(tool_calls([("test__echo", {"text": "ping"})]), text("The tool said ping."))
    client = openai_client(secured, owner.key)

    completion = await client.chat.completions.create(
        model="assistant",
        messages=[
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Hi! How can I help?"},
            {"role": "user", "content": "Echo ping"},
        ],
        max_tokens=500,
        temperature=0.2,
    )

    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == "assistant"
    [choice] = completion.choices
    assert (choice.message.role, choice.message.content, choice.finish_reason) == (
        "assistant",
        "The tool said ping.",
        "stop",
    )
    assert completion.usage is not None
    assert completion.usage.total_tokens > 0
    first, second = fake_openai.requests
    assert [message["role"] for message in first["messages"]] == ["system", "user", "assistant", "user"]
    assert first["messages"][0]["content"].endswith("Answer briefly.")
    assert any(tool["function"]["name"] == "test__echo" for tool in first["tools"])
    assert tool_results(second) == ["ping"]
    # Nothing was added to the user's conversations.
    assert (await secured.client.get("/api/conversations", headers=owner.headers)).json() == []


async def test_a_streamed_completion_sends_chunks_then_usage_then_done(
    secured: Service, fake_openai: FakeOpenAI, owner: KeyOwner
) -> None:
    fake_openai.script(tool_calls([("test__echo", {"text": "pong"})]), text("It said pong, all done."))
    client = openai_client(secured, owner.key)

    stream = await client.chat.completions.create(
        model="assistant",
        messages=[{"role": "user", "content": "Echo pong"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]

    assert {chunk.object for chunk in chunks} == {"chat.completion.chunk"}
    assert len({chunk.id for chunk in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    content = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert content == "It said pong, all done."
    assert [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens > 0
    assert tool_results(fake_openai.requests[1]) == ["pong"]


async def test_the_raw_stream_ends_with_done(secured: Service, fake_openai: FakeOpenAI, owner: KeyOwner) -> None:
    fake_openai.script(text("Short."))
    key = owner.key
    async with secured.client.stream(
        "POST",
        "/v1/chat/completions",
        json={"model": "assistant", "messages": [{"role": "user", "content": "hi"}], "stream": True},
        headers={"Authorization": f"Bearer {key}"},
    ) as response:
        body = (await response.aread()).decode()

    events = [line.removeprefix("data: ") for line in body.split("\n\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    assert all("usage" not in json.loads(event) for event in events[:-1])


async def test_models_lists_the_assistant_and_the_configured_model(secured: Service, owner: KeyOwner) -> None:
    client = openai_client(secured, owner.key)

    models = [model.id async for model in client.models.list()]
    one = await client.models.retrieve("assistant")

    assert models == ["assistant", "fake-gpt"]
    assert (one.id, one.object) == ("assistant", "model")
    with pytest.raises(openai.NotFoundError) as missing:
        await client.models.retrieve("gpt-nothing")
    assert missing.value.code == "model_not_found"


BAD_REQUESTS: list[tuple[dict[str, Any], str | None, str | None]] = [
    (
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]},
        "tools",
        "unsupported_parameter",
    ),
    ({"n": 2}, "n", "unsupported_parameter"),
    ({"frobnicate": True}, "frobnicate", "unknown_parameter"),
    ({"messages": [{"role": "assistant", "content": "last"}]}, "messages[0].role", None),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}, None, None),
    ({"model": "gpt-nothing"}, None, "model_not_found"),
    ({"messages": []}, "messages", None),
    (
        {"messages": [{"role": "user", "content": "hi"}], "stream_options": {"include_usage": True}},
        "stream_options",
        None,
    ),
]


@pytest.mark.parametrize(("extra", "param", "code"), BAD_REQUESTS)
async def test_bad_requests_get_openai_style_errors_naming_the_problem(
    secured: Service,
    fake_openai: FakeOpenAI,
    owner: KeyOwner,
    extra: dict[str, Any],
    param: str | None,
    code: str | None,
) -> None:
    key = owner.key
    body = {"model": "assistant", "messages": [{"role": "user", "content": "hi"}], **extra}

    response = await secured.client.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"})

    error = response.json()["error"]
    assert response.status_code == (404 if code == "model_not_found" else 400)
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["message"]
    if param is not None:
        assert error["param"] == param
    if code is not None:
        assert error["code"] == code
    assert fake_openai.requests == []


async def test_client_side_tools_are_refused_through_the_openai_client(secured: Service, owner: KeyOwner) -> None:
    client = openai_client(secured, owner.key)

    with pytest.raises(openai.BadRequestError) as refused:
        await client.chat.completions.create(
            model="assistant",
            messages=[{"role": "user", "content": "hi"}],
            tools=[{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}],
        )
    assert refused.value.param == "tools"


async def test_unknown_and_revoked_keys_get_401(secured: Service, fake_openai: FakeOpenAI, owner: KeyOwner) -> None:
    key = owner.key
    client = openai_client(secured, key)
    assert [model.id async for model in client.models.list()]
    [listed] = (await secured.client.get("/api/api-keys", headers=owner.headers)).json()
    assert (await secured.client.delete(f"/api/api-keys/{listed['id']}", headers=owner.headers)).status_code == 204

    for bad in (key, key[:-4] + "abcd", "mcpa_short"):
        with pytest.raises(openai.AuthenticationError) as refused:
            await openai_client(secured, bad).chat.completions.create(
                model="assistant", messages=[{"role": "user", "content": "hi"}]
            )
        assert refused.value.code == "invalid_api_key"
    missing = await secured.client.get("/v1/models")
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "invalid_api_key"
    assert fake_openai.requests == []


async def test_a_user_past_the_daily_quota_gets_429_insufficient_quota(
    secured: Service, fake_openai: FakeOpenAI, owner: KeyOwner
) -> None:
    client = openai_client(secured, (await key_owner(secured.client, QUOTA_USER)).key)  # may spend 1 token a day
    fake_openai.script(text("This reply spends the quota."))
    first = await client.chat.completions.create(model="assistant", messages=[{"role": "user", "content": "hi"}])
    assert first.choices[0].message.content == "This reply spends the quota."
    fake_openai.requests.clear()

    with pytest.raises(openai.RateLimitError) as refused:
        await client.chat.completions.create(model="assistant", messages=[{"role": "user", "content": "hi"}])

    assert refused.value.code == "insufficient_quota"
    assert fake_openai.requests == []


async def test_completion_tokens_count_for_the_keys_user(
    secured: Service, fake_openai: FakeOpenAI, owner: KeyOwner
) -> None:
    fake_openai.script(text("Counted."))
    client = openai_client(secured, owner.key)

    completion = await client.chat.completions.create(model="fake-gpt", messages=[{"role": "user", "content": "hi"}])

    usage = (await secured.client.get("/api/usage", headers=owner.headers)).json()
    assert completion.usage is not None
    assert usage["total"]["prompt_tokens"] == completion.usage.prompt_tokens
    assert usage["total"]["completion_tokens"] == completion.usage.completion_tokens
    other = await key_owner(secured.client)
    others = (await secured.client.get("/api/usage", headers=other.headers)).json()
    assert others["total"]["requests"] == 0


async def test_a_model_error_is_a_502_server_error(secured: Service, fake_openai: FakeOpenAI, owner: KeyOwner) -> None:
    fake_openai.script(model_error(400))
    key = owner.key

    response = await secured.client.post(
        "/v1/chat/completions",
        json={"model": "assistant", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {key}"},
    )

    assert response.status_code == 502
    assert response.json()["error"]["type"] == "server_error"


async def test_a_client_that_goes_away_cancels_the_turn_and_its_tool_calls(
    secured: Service, fake_openai: FakeOpenAI, owner: KeyOwner
) -> None:
    before = await secured.state.registry.call_tool("test__cancellations", {"at_least": 0, "wait_seconds": 0})
    # Both calls start together; progress from ``slow`` means the server is running them both.
    fake_openai.script(tool_calls([("test__slow", {"seconds": 30}), ("test__hang", {})]))
    body = {"model": "assistant", "messages": [{"role": "user", "content": "wait"}], "stream": True}

    async with secured.client.stream(
        "POST", "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {owner.key}"}
    ) as response:
        async for line in response.aiter_lines():
            if line.startswith(": tool_call_progress"):
                break

    after = await secured.state.registry.call_tool(
        "test__cancellations", {"at_least": int(before.text) + 1, "wait_seconds": 10}
    )
    assert int(after.text) == int(before.text) + 1


async def test_a_tool_that_needs_approval_does_not_run_where_nobody_can_approve_it(
    secured: Service, fake_openai: FakeOpenAI, owner: KeyOwner
) -> None:
    fake_openai.script(tool_calls([("test__forget", {"item": "the draft"})]), text("I could not forget it."))
    client = openai_client(secured, owner.key)

    completion = await client.chat.completions.create(
        model="assistant", messages=[{"role": "user", "content": "Forget the draft"}]
    )

    assert completion.choices[0].message.content == "I could not forget it."
    [result] = tool_results(fake_openai.requests[-1])
    assert (
        result == "This tool needs the user's approval, which cannot be given from here; the call did not run. "
        "The user can allow it always in the assistant's chat."
    )
